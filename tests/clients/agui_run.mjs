// AG-UI's own client (@ag-ui/client's HttpAgent) against this server: one run per prompt in
// one thread. Prints, as JSON, each run's event types (and step names, and any error), then
// the messages and the state the agent assembled.
// Usage: node agui_run.mjs <url> <threadId> <prompt> [<prompt> ...]
import { HttpAgent } from "@ag-ui/client";

const [url, threadId, ...prompts] = process.argv.slice(2);
const agent = new HttpAgent({ url, threadId });
const runs = [];
for (const [index, prompt] of prompts.entries()) {
  const run = { events: [], steps: [], error: null, result: null };
  agent.addMessage({ id: `client-${index}`, role: "user", content: prompt });
  try {
    const outcome = await agent.runAgent({ runId: `run-${index}` }, {
      onEvent({ event }) {
        run.events.push(event.type);
        if (event.type === "STEP_STARTED") run.steps.push(event.stepName);
        if (event.type === "RUN_ERROR") run.error = { code: event.code, message: event.message };
        if (event.type === "RUN_FINISHED") run.result = { result: event.result, usage: event.usage };
      },
    });
    run.newMessages = outcome.newMessages.map((m) => m.role);
  } catch (error) {
    run.thrown = String(error && error.message ? error.message : error);
  }
  runs.push(run);
}
console.log(JSON.stringify({ runs, messages: agent.messages, state: agent.state }));
