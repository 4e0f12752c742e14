// Every wire type the page uses, taken from the types generated from the server's OpenAPI schema
// (src/lib/api-types.ts, `npm run gen:types`). Nothing here restates a field by hand.
import type { components, operations } from './api-types'

type Schemas = components['schemas']

export type ChatItem = Schemas['ChatItem']
export type ModelInfo = Schemas['ModelInfo']
export type UserInfo = Schemas['UserInfo']
export type GraphInfo = Schemas['GraphInfo']
export type GraphTransition = Schemas['GraphTransition']
export type ConversationSummary = Schemas['ConversationSummary']
export type PromptInput = Schemas['PromptInput']
export type StopResult = Schemas['StopResult']
export type RenameResult = Schemas['RenameResult']
export type DeleteResult = Schemas['DeleteResult']

export type ChatHistoryEvent = Schemas['ChatHistoryEvent']
export type ActionEvent = Schemas['ActionEvent']
export type ModeEvent = Schemas['ModeEvent']
export type DeltaEvent = Schemas['DeltaEvent']
export type ReasoningEvent = Schemas['ReasoningEvent']
export type MessageEvent = Schemas['MessageEvent']
export type ErrorEvent = Schemas['ErrorEvent']
export type ToolCallStartEvent = Schemas['ToolCallStartedEvent']
export type ToolCallArgsEvent = Schemas['ToolCallArgumentsEvent']
export type ToolCallEvent = Schemas['ToolCallEvent']
export type ToolApprovalRequestEvent = Schemas['ToolApprovalRequestEvent']
export type ToolResultEvent = Schemas['ToolResultEvent']
export type ToolErrorEvent = Schemas['ToolErrorEvent']
export type ToolDeniedEvent = Schemas['ToolDeniedEvent']

/** A tool call an answer asked for (an item of an assistant message's `tool_calls`). */
export type ToolCall = NonNullable<ChatItem['tool_calls']>[number]
/** A tool call waiting for a person to approve or deny it. */
export type ApprovalRequest = Schemas['ApprovalRequest']
/** Body of `POST /approve`: a person's answer to a waiting tool call. */
export type ApprovalInput = Schemas['ApprovalInput']
/** A note the `save_note` tool saved (`GET /notes`). */
export type NoteInfo = Schemas['NoteInfo']
/** A reader's vote on an answer, kept as a Burr annotation (`GET`/`POST /feedback`). */
export type FeedbackInfo = Schemas['FeedbackInfo']
/** Body of `POST /feedback`. */
export type FeedbackInput = Schemas['FeedbackInput']
/** How a tool message ended: its result, an error, or a denial. */
export type ToolStatus = NonNullable<ChatItem['status']>

export type ActionValue = ActionEvent['value']
export type MessageValue = MessageEvent['value']
export type ErrorValue = ErrorEvent['value']
export type Mode = ModeEvent['value']
/** The answer model's token usage, when the server reports it. */
export type TokenUsage = NonNullable<MessageValue['usage']>

/** Any event of the response stream (`POST /response/...`). */
export type ChatEvent =
  | ChatHistoryEvent
  | ActionEvent
  | ModeEvent
  | DeltaEvent
  | ReasoningEvent
  | MessageEvent
  | ErrorEvent
  | ToolCallStartEvent
  | ToolCallArgsEvent
  | ToolCallEvent
  | ToolApprovalRequestEvent
  | ToolResultEvent
  | ToolErrorEvent
  | ToolDeniedEvent

export type ChatEventType = ChatEvent['type']

/** The event types this page knows; anything else on the wire is ignored. */
export const CHAT_EVENT_TYPES: readonly ChatEventType[] = [
  'chat_history',
  'action',
  'mode',
  'reasoning',
  'delta',
  'message',
  'error',
  'tool_call_start',
  'tool_call_args',
  'tool_call',
  'tool_approval_request',
  'tool_result',
  'tool_error',
  'tool_denied',
] satisfies readonly ChatEventType[]

/** `GET /branches/{project}/{app}`: the whole tree, root first, then in creation order. */
export type BranchTree = Schemas['BranchTree']

type ChangeType = Schemas['ConversationChange']['type']
/**
 * One event of `GET /events/{project}/{app}`. The schema types `value` as a loose object and
 * describes its fields in words; this is that description, per type.
 */
export type ConversationChange =
  | { type: Extract<ChangeType, 'turn_started' | 'turn_ended'>; value: { turn: string } }
  | { type: Extract<ChangeType, 'branch_created'>; value: { app_id: string; parent: string; fork_at: number } }

/** What `POST /response` does when an answer is already streaming in the conversation. */
export type IfBusy = NonNullable<
  NonNullable<operations['chat_response_api_v0_streaming_chatbot_response__project_id___app_id__post']['parameters']['query']>['if_busy']
>
export type ModelList = Schemas['ModelList']
export type AnswerSettings = Schemas['AnswerSettings']
export type AnswerSettingsInput = Schemas['AnswerSettingsInput']
