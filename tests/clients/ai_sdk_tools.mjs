// The AI SDK's own chat (AbstractChat, what useChat wraps, with a plain state) against this
// server: tool parts, and approvals answered with addToolApprovalResponse and sent back by
// sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses. Commands, one
// JSON line each on stdout:
//   node ai_sdk_tools.mjs <api> <chatId> send <prompt>
//       one turn: {messages, sent, finishes, status, error}
//   node ai_sdk_tools.mjs <api> <chatId> decide <approve|deny> <prompt> [<reason>]
//       a turn that waits for approval, then the answer: {before, messages, sent, ...}
//   node ai_sdk_tools.mjs <api> <chatId> answer <approve|deny> <messages.json>
//       the chat's messages read from a file (saved by a client that asked before the server
//       restarted), then the answer to its waiting approval
// `sent` holds every request body the transport sent; `finishes` each onFinish's reason.
import { readFileSync } from "node:fs";
import {
  AbstractChat,
  DefaultChatTransport,
  lastAssistantMessageIsCompleteWithApprovalResponses,
} from "ai";

const [api, chatId, command, ...args] = process.argv.slice(2);

class PlainState {
  constructor(messages) {
    this.messages = messages;
    this.status = "ready";
    this.error = undefined;
  }
  pushMessage(message) {
    this.messages = [...this.messages, message];
  }
  popMessage() {
    this.messages = this.messages.slice(0, -1);
  }
  replaceMessage(index, message) {
    this.messages = [...this.messages.slice(0, index), message, ...this.messages.slice(index + 1)];
  }
  snapshot(thing) {
    return structuredClone(thing);
  }
}

class Chat extends AbstractChat {
  constructor({ messages = [], ...init }) {
    super({ ...init, state: new PlainState(messages) });
  }
}

const sent = [];
const finishes = [];
let error = null;
const chat = new Chat({
  id: chatId,
  messages: command === "answer" ? JSON.parse(readFileSync(args[1], "utf8")) : [],
  transport: new DefaultChatTransport({
    api,
    fetch: async (url, init) => {
      sent.push({ method: init.method, url: String(url), body: init.body ? JSON.parse(init.body) : null });
      return fetch(url, init);
    },
  }),
  sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
  onFinish: ({ finishReason, isError }) => finishes.push(isError ? "error" : finishReason ?? null),
  onError: (e) => {
    error = String(e.message ?? e);
  },
});

async function finished(count, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  while (finishes.length < count || chat.status === "streaming" || chat.status === "submitted") {
    if (Date.now() > deadline) throw new Error(`no finish ${count} in ${timeoutMs} ms: ${JSON.stringify(finishes)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function decide(decision, reason) {
  const waiting = chat.lastMessage.parts.find((p) => p.state === "approval-requested");
  if (!waiting) throw new Error(`no approval requested: ${JSON.stringify(chat.lastMessage)}`);
  const before = finishes.length;
  await chat.addToolApprovalResponse({ id: waiting.approval.id, approved: decision === "approve", reason });
  await finished(before + 1);
}

const report = (extra = {}) =>
  console.log(JSON.stringify({ ...extra, messages: chat.messages, sent, finishes, status: chat.status, error }));

if (command === "send") {
  await chat.sendMessage({ text: args[0] });
  await finished(1);
  report();
} else if (command === "decide") {
  await chat.sendMessage({ text: args[1] });
  await finished(1);
  const before = structuredClone(chat.messages);
  await decide(args[0], args[2]);
  report({ before });
} else if (command === "answer") {
  await decide(args[0], args[2]);
  report();
} else {
  console.error(`unknown command ${command}`);
  process.exit(2);
}
