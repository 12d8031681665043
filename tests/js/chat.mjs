// One chat call through the gateway with the official openai npm package.
// Usage: node chat.mjs BASE_URL API_KEY; prints a JSON line of what it saw.
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

const { data, response } = await client.chat.completions
  .create(
    {
      model: "llama-3.3-70b",
      messages: [{ role: "user", content: "What is solar curtailment? usage=12,847" }],
    },
    { headers: { "X-Daylite-Customer": "js_customer", "X-Daylite-Feature": "js" } },
  )
  .withResponse();

console.log(
  JSON.stringify({
    content: data.choices[0].message.content,
    usageCost: data.usage.cost,
    cost: response.headers.get("x-daylite-cost"),
    tokensIn: response.headers.get("x-daylite-tokens-in"),
    tokensOut: response.headers.get("x-daylite-tokens-out"),
    customer: response.headers.get("x-daylite-customer"),
    requestId: response.headers.get("x-daylite-request-id"),
  }),
);
