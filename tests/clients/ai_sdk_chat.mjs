// The AI SDK's own client pieces (DefaultChatTransport + readUIMessageStream, what useChat
// runs) against this server. Commands, as JSON lines on stdout:
//   node ai_sdk_chat.mjs <api> <chatId> send <prompt> [<prompt> ...]   one turn per prompt
//   node ai_sdk_chat.mjs <api> <chatId> regenerate <prompt>            a turn, then regenerate it
//   node ai_sdk_chat.mjs <api> <chatId> drop-and-resume <prompt> <n>   drop the connection after
//                                                                      n text deltas, then resume
// Each turn prints {trigger, text, reasoning, parts, metadata, error}.
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [api, chatId, command, ...args] = process.argv.slice(2);
const transport = new DefaultChatTransport({ api });
const messages = [];
let counter = 0;

function summary(trigger, message, error) {
  const parts = message ? message.parts : [];
  return {
    trigger,
    id: message ? message.id : null,
    text: parts.filter((p) => p.type === "text").map((p) => p.text).join(""),
    reasoning: parts.filter((p) => p.type === "reasoning").map((p) => p.text).join(""),
    parts: parts.map((p) => (p.type.startsWith("data-") ? { type: p.type, data: p.data } : { type: p.type })),
    metadata: message ? message.metadata ?? null : null,
    error,
  };
}

async function read(stream, trigger) {
  let last = null;
  let error = null;
  for await (const message of readUIMessageStream({ stream, onError: (e) => { error = String(e.message ?? e); } })) {
    last = message;
  }
  return summary(trigger, last, error);
}

async function turn(trigger, messageId) {
  const stream = await transport.sendMessages({
    chatId, messages, trigger, messageId, abortSignal: undefined,
  });
  const result = await read(stream, trigger);
  messages.push({ id: result.id, role: "assistant", parts: [{ type: "text", text: result.text }] });
  return result;
}

function addPrompt(prompt) {
  messages.push({ id: `user-${counter++}`, role: "user", parts: [{ type: "text", text: prompt }] });
}

if (command === "send") {
  for (const prompt of args) {
    addPrompt(prompt);
    console.log(JSON.stringify(await turn("submit-message")));
  }
} else if (command === "regenerate") {
  addPrompt(args[0]);
  const first = await turn("submit-message");
  console.log(JSON.stringify(first));
  messages.pop(); // as useChat's regenerate() does: the last answer goes, the prompt stays
  console.log(JSON.stringify(await turn("regenerate-message", first.id)));
} else if (command === "drop-and-resume") {
  addPrompt(args[0]);
  const after = Number(args[1]);
  const controller = new AbortController();
  const stream = await transport.sendMessages({
    chatId, messages, trigger: "submit-message", messageId: undefined, abortSignal: controller.signal,
  });
  let deltas = 0;
  let seen = "";
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.type === "text-delta") {
        seen += value.delta;
        if (++deltas >= after) { controller.abort(); break; }
      }
    }
  } catch (error) { if (!controller.signal.aborted) console.error("read failed:", error); }
  const resumed = await transport.reconnectToStream({ chatId });
  if (resumed === null) {
    console.log(JSON.stringify({ trigger: "resume-stream", seen, resumed: false }));
  } else {
    const result = await read(resumed, "resume-stream");
    console.log(JSON.stringify({ ...result, seen, resumed: true }));
  }
  const again = await transport.reconnectToStream({ chatId });
  console.log(JSON.stringify({ trigger: "resume-after-end", resumed: again !== null }));
} else {
  console.error(`unknown command ${command}`);
  process.exit(2);
}
