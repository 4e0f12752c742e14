import { useCallback, useState, type FormEvent } from 'react'
import { useResource } from '../hooks/useResource'
import type { ApiClient } from '../lib/api'
import type { AnswerSettings, ModelList } from '../lib/types'

const field =
  'mt-1 block w-full rounded-md border border-gray-300 bg-white px-2 py-1 text-sm text-gray-900 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue disabled:opacity-60 dark:border-gray-600 dark:bg-gray-800 dark:text-gray-100'

interface SettingsPanelProps {
  client: ApiClient
  project: string | null
  /** The open conversation. */
  appId: string
  /** False while an answer streams (the server refuses a change then). */
  editable: boolean
  /** Called once a change is saved (a conversation with no message yet is saved by it). */
  onSaved?: () => void
}

/**
 * The open conversation's answer model, system prompt and temperature (`GET`/`PATCH /settings`),
 * kept in its Burr state and used by its next answers; the models are the server's (`GET /models`).
 */
export function SettingsPanel({ client, project, appId, editable, onSaved }: SettingsPanelProps) {
  const loadModels = useCallback((signal: AbortSignal) => client.models({ signal }), [client])
  const models = useResource(loadModels)
  const loadSettings = useCallback(
    (signal: AbortSignal) => (project ? client.answerSettings(project, appId, { signal }) : Promise.resolve(null)),
    [client, project, appId],
  )
  const settings = useResource(loadSettings)
  return (
    <details className="shrink-0 border-t border-gray-200 px-3 pb-3 pt-2 text-sm dark:border-gray-700" data-testid="settings-panel">
      <summary className="cursor-pointer text-xs font-semibold uppercase tracking-wide text-gray-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue dark:text-gray-400">
        Conversation settings
      </summary>
      {settings.error && <p className="mt-2 text-xs text-red-700 dark:text-red-300">Could not load the settings: {settings.error}</p>}
      {project && settings.data && !settings.loading && (
        <SettingsForm
          key={appId}
          client={client}
          project={project}
          appId={appId}
          initial={settings.data}
          models={models.data}
          editable={editable}
          onSaved={onSaved}
        />
      )}
    </details>
  )
}

interface SettingsFormProps {
  client: ApiClient
  project: string
  appId: string
  initial: AnswerSettings
  models: ModelList | null
  editable: boolean
  onSaved: (() => void) | undefined
}

function SettingsForm({ client, project, appId, initial, models, editable, onSaved }: SettingsFormProps) {
  const [model, setModel] = useState(initial.model ?? '')
  const [systemPrompt, setSystemPrompt] = useState(initial.system_prompt ?? '')
  const [temperature, setTemperature] = useState(initial.temperature === null ? '' : String(initial.temperature))
  const [saving, setSaving] = useState(false)
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null)

  const names = models?.models ?? []
  const choices = model && !names.includes(model) ? [model, ...names] : names

  const save = async (event: FormEvent) => {
    event.preventDefault()
    setSaving(true)
    setMessage(null)
    try {
      const saved = await client.changeAnswerSettings(project, appId, {
        model: model || null,
        system_prompt: systemPrompt.trim() ? systemPrompt : null,
        temperature: temperature.trim() === '' ? null : Number(temperature),
      })
      setModel(saved.model ?? '')
      setSystemPrompt(saved.system_prompt ?? '')
      setTemperature(saved.temperature === null ? '' : String(saved.temperature))
      setMessage({ ok: true, text: 'Saved: the next answers use these settings.' })
      onSaved?.()
    } catch (error) {
      setMessage({ ok: false, text: error instanceof Error ? error.message : 'The settings could not be saved.' })
    } finally {
      setSaving(false)
    }
  }

  return (
    <form className="mt-2 space-y-2" onSubmit={(event) => void save(event)} aria-label="Conversation settings">
      <label className="block text-xs font-medium text-gray-700 dark:text-gray-300">
        Model
        <select className={field} value={model} onChange={(e) => setModel(e.target.value)} disabled={!editable || saving}>
          <option value="">Default{models ? ` (${models.default})` : ''}</option>
          {choices.map((name) => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
      </label>
      {models?.source === 'configured' && (
        <p className="text-xs text-gray-500 dark:text-gray-400">The model server did not list its models.</p>
      )}
      <label className="block text-xs font-medium text-gray-700 dark:text-gray-300">
        System prompt
        <textarea
          className={`${field} min-h-16`}
          value={systemPrompt}
          onChange={(e) => setSystemPrompt(e.target.value)}
          placeholder="None: the mode's instructions alone"
          rows={3}
          disabled={!editable || saving}
        />
      </label>
      <label className="block text-xs font-medium text-gray-700 dark:text-gray-300">
        Temperature (0 to 2)
        <input
          className={field}
          type="number"
          min={0}
          max={2}
          step={0.1}
          value={temperature}
          onChange={(e) => setTemperature(e.target.value)}
          placeholder="Default"
          disabled={!editable || saving}
        />
      </label>
      <button
        type="submit"
        disabled={!editable || saving}
        className="rounded-md bg-dwlightblue-deep px-3 py-1 text-sm font-semibold text-white hover:bg-sky-700 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue disabled:opacity-60"
      >
        Save settings
      </button>
      {message && (
        <p
          role={message.ok ? 'status' : 'alert'}
          data-testid="settings-message"
          className={`text-xs ${message.ok ? 'text-gray-600 dark:text-gray-300' : 'text-red-700 dark:text-red-300'}`}
        >
          {message.text}
        </p>
      )}
    </form>
  )
}
