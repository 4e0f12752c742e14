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

export type ChatHistoryEvent = Schemas['ChatHistoryEvent']
export type ActionEvent = Schemas['ActionEvent']
export type ModeEvent = Schemas['ModeEvent']
export type DeltaEvent = Schemas['DeltaEvent']
export type ReasoningEvent = Schemas['ReasoningEvent']
export type MessageEvent = Schemas['MessageEvent']
export type ErrorEvent = Schemas['ErrorEvent']

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
