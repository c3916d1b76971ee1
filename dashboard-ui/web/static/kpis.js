// The headline figures: overall status, active services, RPS, average and
// p95 response time, the IDLE badge, the data stores and the window facts.

import { byId, setText, statusOf } from './dom.js';
import { count, ms, num, percent, rate } from './format.js';

const STATUS_TEXT = {
  HEALTHY: 'every service is online',
  DEGRADED: 'some services are offline',
  DOWN: 'no service is online',
};

export class Kpis {
  constructor() {
    this.ids = {};
    for (const id of ['kpi-card-status', 'kpi-status', 'kpi-status-sub', 'kpi-active', 'kpi-active-meter',
      'kpi-rps', 'kpi-rps-sub', 'kpi-latency', 'kpi-latency-sub', 'kpi-p95', 'kpi-p95-sub', 'idle-badge',
      'db-status', 'cache-status', 'fact-success', 'fact-total', 'fact-p50-p99', 'fact-ws-clients',
      'fact-ws-heartbeats', 'fact-lbs', 'window-note']) {
      this.ids[id] = byId(id);
    }
  }

  render(stats) {
    const $ = this.ids;
    const status = ['HEALTHY', 'DEGRADED', 'DOWN'].includes(stats.status) ? stats.status : 'UNKNOWN';
    $['kpi-card-status'].dataset.status = status;
    setText($['kpi-status'], status);
    setText($['kpi-status-sub'], STATUS_TEXT[status] || 'unrecognised status');

    const active = num(stats.active_services);
    const total = num(stats.total_services);
    setText($['kpi-active'], active === null || total === null ? '—' : `${active}/${total}`);
    const share = active !== null && total ? Math.min(1, Math.max(0, active / total)) : 0;
    $['kpi-active-meter'].style.width = `${(share * 100).toFixed(1)}%`;
    $['kpi-active-meter'].dataset.full = String(share === 1);

    setText($['kpi-rps'], rate(stats.requests_per_second));
    setText($['kpi-rps-sub'], `${percent(stats.success_rate)} success · ${count(stats.total_requests)} req in ${count(stats.window_seconds)} s`);
    setText($['kpi-latency'], ms(stats.avg_response_time_ms));
    setText($['kpi-latency-sub'], `p50 ${ms(stats.p50_response_time_ms)} ms`);
    setText($['kpi-p95'], ms(stats.p95_response_time_ms));
    setText($['kpi-p95-sub'], `p99 ${ms(stats.p99_response_time_ms)} ms`);

    // Only an explicit false is IDLE; a missing field is not evidence of idleness.
    $['idle-badge'].hidden = stats.has_real_traffic !== false;

    for (const [id, store] of [['db-status', stats.database], ['cache-status', stats.cache]]) {
      const s = statusOf(store && store.status);
      $[id].dataset.status = s;
      setText($[id], s === 'UNKNOWN' ? '—' : s);
    }

    setText($['fact-success'], percent(stats.success_rate));
    setText($['fact-total'], count(stats.total_requests));
    setText($['fact-p50-p99'], `${ms(stats.p50_response_time_ms)} / ${ms(stats.p99_response_time_ms)} ms`);
    const ws = stats.ws && typeof stats.ws === 'object' ? stats.ws : {};
    setText($['fact-ws-clients'], count(ws.clients));
    setText($['fact-ws-heartbeats'], count(ws.heartbeats));
    const lbs = Array.isArray(stats.load_balancers) ? stats.load_balancers.filter((l) => l && typeof l === 'object') : [];
    const lbOnline = lbs.filter((l) => statusOf(l.status) === 'ONLINE').length;
    setText($['fact-lbs'], lbs.length ? `${lbOnline}/${lbs.length} online` : '—');
    $['fact-lbs'].title = lbs.map((l) => `${String(l.instance ?? '?')}: ${statusOf(l.status)}`).join('\n');
    const win = num(stats.window_seconds);
    setText($['window-note'], win === null ? 'window' : `last ${win} s`);
  }
}
