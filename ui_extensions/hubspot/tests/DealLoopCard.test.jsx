import React from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Button, EmptyState, ErrorState, Heading, Link, LoadingSpinner, Tag, Text, hubspot } from '@hubspot/ui-extensions';
import { createRenderer } from '@hubspot/ui-extensions/testing';
import { DealLoopCard, cardUrl } from '../src/app/cards/DealLoopCard.jsx';
import { BACKEND } from '../src/app/cards/config.js';

const context = { portal: { id: 62515 }, user: { id: 77 }, crm: { objectId: 123, objectTypeId: '0-3' } };

const VIEW = {
  deal_id: '123', empty: false, message: '', can_approve: false, approvals: [], discovery: null, handoff: null,
  risk: {
    score: 82, level: 'high', level_label: 'High', tone: 'danger', next_move: 'Book a call with the CFO',
    reasons: [{ code: 'champion_quiet', text: 'Champion silent for 21 days', evidence: [] },
      { code: 'close_date_pushed', text: 'Close date pushed twice', evidence: [] }],
  },
  objections: [{ type: 'price', label: 'Price', recommended: 'Roi case', answered_with: [],
    responses: [{ strategy: 'roi_case', label: 'Roi case', win_rate: '62%', range: '41%–80%', n: 14, verdict: 'better' }] }],
};

const MANAGER_VIEW = {
  ...VIEW, can_approve: true,
  approvals: [{ id: 'p1', title: 'Add budget owner to discovery', loop: 'Discovery', created_at: '', changes: ['add Ask: Budget owner'] }],
};

function reply(body, status = 200) {
  return { ok: status < 400, status, json: async () => body };
}

function texts(find) {
  return find.findAll(Text).map((node) => node.text).join(' | ');
}

afterEach(() => vi.restoreAllMocks());

describe('DealLoopCard', () => {
  it('calls the backend with the portal, user and deal, then shows score, level, reasons and next move', async () => {
    const fetch = vi.spyOn(hubspot, 'fetch').mockResolvedValue(reply(VIEW));
    const renderer = createRenderer('crm.record.sidebar');
    renderer.render(<DealLoopCard context={context} />);
    expect(renderer.find(LoadingSpinner)).toBeTruthy();
    await renderer.waitFor(() => expect(renderer.find(Heading).text).toBe('Risk 82/100'));
    expect(fetch).toHaveBeenCalledWith(
      `${BACKEND}/api/hubspot/cards/deal?portalId=62515&userId=77&objectId=123`, { method: 'GET', timeout: 10000 });
    expect(renderer.find(Tag).text).toBe('High');
    expect(renderer.find(Tag).props.variant).toBe('error');
    const all = texts(renderer);
    expect(all).toContain('Champion silent for 21 days');
    expect(all).toContain('Next move: Book a call with the CFO');
    expect(all).toContain('Roi case: won 62% (41%–80%, 14 deals)');
    expect(renderer.maybeFind(Button, { children: 'Approve' })).toBeNull();
  });

  it('shows managers their pending approvals and approves through the backend', async () => {
    const fetch = vi.spyOn(hubspot, 'fetch')
      .mockResolvedValueOnce(reply(MANAGER_VIEW))
      .mockResolvedValueOnce(reply({ proposal_id: 'p1', status: 'approved' }))
      .mockResolvedValueOnce(reply({ ...MANAGER_VIEW, approvals: [] }));
    const renderer = createRenderer('crm.record.sidebar');
    renderer.render(<DealLoopCard context={context} />);
    await renderer.waitFor(() => expect(texts(renderer)).toContain('Add budget owner to discovery'));
    const approve = renderer.findAll(Button).find((b) => b.text === 'Approve');
    approve.trigger('onClick');
    await renderer.waitFor(() => expect(fetch).toHaveBeenCalledTimes(3));
    expect(fetch.mock.calls[1]).toEqual([
      `${BACKEND}/api/hubspot/cards/proposals/p1/approve?portalId=62515&userId=77`, { method: 'POST', body: {}, timeout: 10000 }]);
    await renderer.waitFor(() => expect(texts(renderer)).not.toContain('Add budget owner to discovery'));
  });

  it('shows an error state with a retry when the backend refuses', async () => {
    vi.spyOn(hubspot, 'fetch').mockResolvedValue(reply({ code: 'bad_signature' }, 401));
    const renderer = createRenderer('crm.record.sidebar');
    renderer.render(<DealLoopCard context={context} />);
    await renderer.waitFor(() => expect(renderer.find(ErrorState)).toBeTruthy());
    expect(texts(renderer)).toContain('salesloop answered 401');
  });

  it('says when a deal is not scored yet', async () => {
    vi.spyOn(hubspot, 'fetch').mockResolvedValue(reply({ ...VIEW, risk: null, objections: [], empty: true,
      message: 'salesloop has not scored this deal yet' }));
    const renderer = createRenderer('crm.record.sidebar');
    renderer.render(<DealLoopCard context={context} />);
    await renderer.waitFor(() => expect(texts(renderer)).toContain('has not scored this deal yet'));
  });

  it('says when salesloop is not installed in this portal, with the install link', async () => {
    vi.spyOn(hubspot, 'fetch').mockResolvedValue(reply({
      state: 'not_installed', empty: true, title: 'salesloop is not installed in this HubSpot account',
      message: 'Once an admin installs it, this card shows each deal’s risk.', risk: null, objections: [], discovery: null,
      handoff: null, can_approve: false, approvals: [],
      action: { label: 'Install salesloop in HubSpot', href: 'https://app.example/install/hubspot' },
    }));
    const renderer = createRenderer('crm.record.sidebar');
    renderer.render(<DealLoopCard context={context} />);
    await renderer.waitFor(() => expect(renderer.find(EmptyState).props.title).toBe('salesloop is not installed in this HubSpot account'));
    const link = renderer.find(Link);
    expect(link.text).toBe('Install salesloop in HubSpot');
    expect(link.props.href).toEqual({ url: 'https://app.example/install/hubspot', external: true });
  });

  it('builds backend URLs on the permitted origin', () => {
    expect(cardUrl('/x', context)).toBe(`${BACKEND}/x?portalId=62515&userId=77`);
  });
});
