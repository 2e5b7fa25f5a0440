import React, { useCallback, useEffect, useState } from 'react';
import {
  Alert, Button, Divider, EmptyState, ErrorState, Flex, Heading, Link, List, LoadingSpinner, Tag, Text, hubspot,
} from '@hubspot/ui-extensions';
import { BACKEND } from './config.js';

// Everything comes from our backend's store (never from HubSpot's APIs here); the backend
// checks HubSpot's v3 signature on every call, which covers these query parameters.
export function cardUrl(path, context, extra = {}) {
  const params = new URLSearchParams({
    portalId: String(context.portal.id), userId: String(context.user.id), ...extra,
  });
  return `${BACKEND}${path}?${params.toString()}`;
}

const TAG_VARIANT = { danger: 'error', warning: 'warning', success: 'success', info: 'info' };

export function DealLoopCard({ context }) {
  const [view, setView] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(null);
  const [notice, setNotice] = useState(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      const url = cardUrl('/api/hubspot/cards/deal', context, { objectId: String(context.crm.objectId) });
      const response = await hubspot.fetch(url, { method: 'GET', timeout: 10000 });
      if (!response.ok) throw new Error(`salesloop answered ${response.status}`);
      setView(await response.json());
    } catch (err) {
      setError(err.message || String(err));
    }
  }, [context]);

  useEffect(() => { load(); }, [load]);

  const decide = async (proposalId, verdict) => {
    setBusy(proposalId);
    try {
      const url = cardUrl(`/api/hubspot/cards/proposals/${encodeURIComponent(proposalId)}/${verdict}`, context);
      const response = await hubspot.fetch(url, { method: 'POST', body: {}, timeout: 10000 });
      if (!response.ok) throw new Error(`salesloop answered ${response.status}`);
      setNotice(verdict === 'approve' ? 'Approved.' : 'Rejected.');
      await load();
    } catch (err) {
      setNotice(`Could not ${verdict}: ${err.message || err}`);
    } finally {
      setBusy(null);
    }
  };

  if (error) {
    return (
      <ErrorState title="salesloop could not load this deal">
        <Text>{error}</Text>
        <Button onClick={load}>Try again</Button>
      </ErrorState>
    );
  }
  if (!view) return <LoadingSpinner label="Loading salesloop" />;
  return (
    <Flex direction="column" gap="sm">
      {notice && <Alert title="salesloop" variant="info">{notice}</Alert>}
      {view.empty && (
        <EmptyState title={view.title || 'Not scored yet'} layout="vertical">
          <Text>{view.message}</Text>
          {view.action && <Link href={{ url: view.action.href, external: true }}>{view.action.label}</Link>}
        </EmptyState>
      )}
      {view.risk && <Risk risk={view.risk} />}
      {view.objections.length > 0 && <Objections objections={view.objections} />}
      {view.discovery && <Discovery discovery={view.discovery} />}
      {view.can_approve && view.approvals.length > 0 && (
        <Approvals approvals={view.approvals} busy={busy} onDecide={decide} />
      )}
    </Flex>
  );
}

function Risk({ risk }) {
  return (
    <Flex direction="column" gap="xs">
      <Flex direction="row" gap="sm" align="center">
        <Heading>Risk {risk.score}/100</Heading>
        <Tag variant={TAG_VARIANT[risk.tone] || 'default'}>{risk.level_label}</Tag>
      </Flex>
      {risk.chance && <Text>{risk.chance}</Text>}
      {risk.reasons.length > 0 && (
        <List variant="unordered">
          {risk.reasons.map((reason) => (
            <Text key={reason.code}>{reason.text}</Text>
          ))}
        </List>
      )}
      {risk.next_move && <Text format={{ fontWeight: 'bold' }}>Next move: {risk.next_move}</Text>}
    </Flex>
  );
}

function Objections({ objections }) {
  return (
    <Flex direction="column" gap="xs">
      <Divider />
      <Heading>Objections</Heading>
      {objections.map((objection) => (
        <Flex key={objection.type} direction="column" gap="flush">
          <Text format={{ fontWeight: 'demibold' }}>
            {objection.label}{objection.recommended ? `: try ${objection.recommended}` : ''}
          </Text>
          {objection.responses.map((response) => (
            <Text key={response.strategy} variant="microcopy">
              {response.label}: won {response.win_rate} ({response.range}, {response.n} deals)
            </Text>
          ))}
        </Flex>
      ))}
    </Flex>
  );
}

function Discovery({ discovery }) {
  return (
    <Flex direction="column" gap="xs">
      <Divider />
      <Heading>Ask next</Heading>
      <List variant="unordered">
        {discovery.questions.map((q) => <Text key={q.id}>{q.text} ({q.lift})</Text>)}
      </List>
    </Flex>
  );
}

function Approvals({ approvals, busy, onDecide }) {
  return (
    <Flex direction="column" gap="xs">
      <Divider />
      <Heading>Waiting for your approval</Heading>
      {approvals.map((p) => (
        <Flex key={p.id} direction="column" gap="xs">
          <Text format={{ fontWeight: 'demibold' }}>{p.title}</Text>
          {p.changes.map((change) => <Text key={change} variant="microcopy">{change}</Text>)}
          <Flex direction="row" gap="xs">
            <Button variant="primary" disabled={busy === p.id} onClick={() => onDecide(p.id, 'approve')}>Approve</Button>
            <Button variant="destructive" disabled={busy === p.id} onClick={() => onDecide(p.id, 'reject')}>Reject</Button>
          </Flex>
        </Flex>
      ))}
    </Flex>
  );
}

hubspot.extend(({ context }) => <DealLoopCard context={context} />);
