// The services table: one row per service, then one row per instance with
// its status, the latency of its /stats answer and when it was last seen.

import { el, pill, setText, statusOf } from './dom.js';
import { ago, ms, num, parseTime } from './format.js';

/**
 * renderServices fills the table body. serverNow is the load balancer's
 * timestamp, so that "last seen" ages do not depend on this machine's clock.
 */
export function renderServices(tbody, summaryEl, stats, serverNow) {
  const services = Array.isArray(stats.services) ? stats.services.filter((s) => s && typeof s === 'object') : [];
  if (services.length === 0) {
    tbody.replaceChildren(el('tr', { class: 'placeholder' }, el('td', { colspan: 5 }, 'The load balancer reports no services.')));
    setText(summaryEl, '');
    return;
  }
  const rows = [];
  let online = 0;
  let instancesOnline = 0;
  let instancesTotal = 0;
  for (const svc of services) {
    const name = typeof svc.name === 'string' ? svc.name : '(unnamed)';
    const status = statusOf(svc.status);
    if (status === 'ONLINE') online++;
    const instances = Array.isArray(svc.instances) ? svc.instances.filter((i) => i && typeof i === 'object') : [];
    const up = num(svc.online_instances) ?? instances.filter((i) => statusOf(i.status) === 'ONLINE').length;
    const total = num(svc.total_instances) ?? instances.length;
    instancesOnline += up;
    instancesTotal += total;
    const seen = instances.map((i) => parseTime(i.last_seen)).filter((t) => t !== null);
    const lastSeen = seen.length ? Math.max(...seen) : null;

    rows.push(el('tr', { class: 'svc', 'data-service': name, 'data-status': status },
      el('th', { scope: 'row', 'data-label': 'Service' },
        el('span', { class: 'svc-name' }, el('span', { class: 'status-dot', 'data-status': status, 'aria-hidden': 'true' }), name)),
      el('td', { 'data-label': 'Status' }, pill(status)),
      el('td', { 'data-label': 'Instances', class: 'num' }, `${up}/${total}`),
      el('td', { 'data-label': 'Latency', class: 'right num' }, latency(svc.latency_ms, status)),
      el('td', { 'data-label': 'Last seen', class: 'right' }, lastSeenText(lastSeen, serverNow))));

    for (const inst of instances) {
      const iname = typeof inst.instance === 'string' ? inst.instance : '(instance)';
      const istatus = statusOf(inst.status);
      const url = typeof inst.url === 'string' ? inst.url : '';
      const err = typeof inst.error === 'string' && inst.error !== '' ? inst.error : '';
      rows.push(el('tr', { class: 'inst', 'data-service': name, 'data-instance': iname, 'data-status': istatus },
        el('th', { scope: 'row', 'data-label': 'Instance' },
          el('span', { class: 'inst-name' }, iname),
          url ? el('span', { class: 'inst-url' }, url) : null,
          err ? el('span', { class: 'inst-error' }, err) : null),
        el('td', { 'data-label': 'Status' }, pill(istatus)),
        el('td', { 'data-label': 'Instances', class: 'muted' }, ''),
        el('td', { 'data-label': 'Latency', class: 'right num' }, latency(inst.latency_ms, istatus)),
        el('td', { 'data-label': 'Last seen', class: 'right', title: inst.last_seen ? String(inst.last_seen) : '' },
          lastSeenText(parseTime(inst.last_seen), serverNow))));
    }
  }
  tbody.replaceChildren(...rows);
  setText(summaryEl, `${online}/${services.length} services · ${instancesOnline}/${instancesTotal} instances online`);
}

function latency(v, status) {
  const n = num(v);
  // An offline target's latency is that of a failed call: not a figure to show.
  if (n === null || status === 'OFFLINE') return '—';
  return `${ms(n)} ms`;
}

function lastSeenText(t, now) {
  if (t === null) return 'never';
  return ago(now - t);
}
