// AG-UI's own client (@ag-ui/client's HttpAgent) with tools: a run that ends in an interrupt
// (a tool call waiting for approval), a run refused by the client itself because it does not
// answer the interrupt, then the run that resumes it. Prints one JSON line: each run's events
// (type, and the tool call fields), its outcome, the agent's pending interrupts after it, and
// the messages the agent assembled.
// Usage: node agui_tools.mjs <url> <threadId> <prompt> [approve|deny|cancel|none] [<reason>]
import { HttpAgent } from "@ag-ui/client";

const [url, threadId, prompt, decision = "none", reason] = process.argv.slice(2);
const agent = new HttpAgent({ url, threadId });
const runs = [];

async function run(runId, resume) {
  const record = { events: [], outcome: null, error: null };
  try {
    await agent.runAgent({ runId, ...(resume ? { resume } : {}) }, {
      onEvent({ event }) {
        const { type, toolCallId, toolCallName, parentMessageId, messageId, content, delta } = event;
        record.events.push(
          type.startsWith("TOOL_CALL")
            ? { type, toolCallId, toolCallName, parentMessageId, messageId, content, delta }
            : { type },
        );
        if (type === "RUN_ERROR") record.error = { code: event.code, message: event.message };
      },
      onRunFinishedEvent({ outcome, interrupts, result }) {
        record.outcome = { outcome, interrupts: interrupts ?? null, result: result ?? null };
      },
    });
  } catch (error) {
    record.thrown = String(error && error.message ? error.message : error);
  }
  record.pendingInterrupts = structuredClone(agent.pendingInterrupts);
  runs.push(record);
  return record;
}

agent.addMessage({ id: "client-0", role: "user", content: prompt });
const first = await run("run-0");
if (decision !== "none" && first.pendingInterrupts.length > 0) {
  await run("run-unanswered"); // the client refuses a run that leaves an interrupt open
  const resume = first.pendingInterrupts.map((interrupt) =>
    decision === "cancel"
      ? { interruptId: interrupt.id, status: "cancelled" }
      : {
          interruptId: interrupt.id,
          status: "resolved",
          payload: { approved: decision === "approve", ...(reason ? { reason } : {}) },
        },
  );
  await run("run-1", resume);
}
console.log(JSON.stringify({ runs, messages: agent.messages }));
