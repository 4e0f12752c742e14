import { render, screen, within } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { BurrPanel } from './BurrPanel'
import type { GraphInfo } from '../lib/types'

const graph: GraphInfo = {
  entrypoint: 'prompt',
  actions: ['check_safety', 'prompt', 'decide_mode', 'answer_question', 'unsafe_response'],
  streaming_actions: ['answer_question', 'unsafe_response'],
  transitions: [
    { from: 'prompt', to: 'check_safety', condition: 'default' },
    { from: 'check_safety', to: 'decide_mode', condition: 'safe=True' },
    { from: 'check_safety', to: 'unsafe_response', condition: 'default' },
    { from: 'decide_mode', to: 'answer_question', condition: 'mode=answer_question' },
  ],
}

const base = {
  graph,
  graphError: null,
  activeAction: null,
  path: [] as string[],
  streaming: false,
  project: 'proj',
  appId: 'conv_1',
  saved: true,
  burrBase: '/prefix',
}

describe('BurrPanel', () => {
  it('lists the actions, entrypoint first, with their transitions', () => {
    render(<BurrPanel {...base} />)
    const nodes = screen.getAllByTestId('graph-node')
    expect(nodes.map((n) => n.getAttribute('data-action'))).toEqual([
      'prompt',
      'check_safety',
      'decide_mode',
      'answer_question',
      'unsafe_response',
    ])
    const edges = within(nodes[1]!).getByRole('list', { name: 'Transitions from check_safety' })
    expect(edges).toHaveTextContent('decide_mode if safe=True')
    expect(edges).toHaveTextContent('unsafe_response')
  })

  it('highlights the running action and marks the path', () => {
    render(<BurrPanel {...base} activeAction="decide_mode" path={['prompt', 'check_safety', 'decide_mode']} streaming />)
    const active = screen.getAllByTestId('graph-node').filter((n) => n.getAttribute('aria-current') === 'step')
    expect(active.map((n) => n.getAttribute('data-action'))).toEqual(['decide_mode'])
    expect(active[0]).toHaveAttribute('data-active', 'true')
    expect(screen.getByTestId('answer-path')).toHaveTextContent('prompt→check_safety→decide_mode')
  })

  it('says why a conversation loaded from history has no path, instead of "No answer yet."', () => {
    const { rerender } = render(<BurrPanel {...base} />)
    expect(screen.getByTestId('answer-path-empty')).toHaveTextContent('No answer yet.')
    rerender(<BurrPanel {...base} hasAnswers />)
    expect(screen.getByTestId('answer-path-empty')).toHaveTextContent('Burr\u2019s UI has the steps of earlier ones')
    expect(screen.queryByText('No answer yet.')).toBeNull()
  })

  it('links to the conversation in Burr and back to the projects, under the prefix', () => {
    render(<BurrPanel {...base} />)
    expect(screen.getByTestId('burr-conversation-link')).toHaveAttribute('href', '/prefix/project/proj/__none__/conv_1')
    expect(screen.getByRole('link', { name: 'Back to Burr projects' })).toHaveAttribute('href', '/prefix/projects')
  })

  it('has no conversation link before the conversation exists', () => {
    render(<BurrPanel {...base} saved={false} />)
    expect(screen.queryByTestId('burr-conversation-link')).toBeNull()
  })
})
