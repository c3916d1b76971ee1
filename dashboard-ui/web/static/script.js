// The dashboard's entry module: configuration and the poll loop that feeds
// every panel. Each concern lives in its own module (api, kpis, charts,
// services, alarms, heartbeat, theme); this file only wires them.

import { StatsClient } from './api.js';
import { AlarmLog } from './alarms.js';
import { TrafficCharts } from './charts.js';
import { byId, setText } from './dom.js';
import { ago, clock, parseTime } from './format.js';
import { HttpHeartbeat, WsHeartbeat } from './heartbeat.js';
import { Kpis } from './kpis.js';
import { renderServices } from './services.js';
import { Theme } from './theme.js';

/**
 * config is the dashboard's configuration. pollMs can be overridden with
 * the page's ?poll=<ms> query (kept between 200 ms and 60 s).
 */
export const config = {
  statsUrl: '/stats',
  pollMs: 2000,
  // A poll is abandoned after this long; the load balancer answers /stats
  // within ~2 s even when services hang.
  pollTimeoutMs: 4000,
  historyMs: 5 * 60 * 1000,
  maxAlarms: 50,
  // The WebSocket heartbeat the toggle controls (seed: "hb" every 5 s,
  // reconnect 2 s after a drop).
  wsHeartbeat: { path: '/api/ws-heartbeat', intervalMs: 5000, reconnectMs: 2000 },
  // The HTTP heartbeat: GET /api/health with X-Heartbeat: true. Off by
  // default; the load balancer does not count it as traffic, so it does not
  // clear IDLE (the WebSocket heartbeat does).
  heartbeat: { enabled: false, url: '/api/health', intervalMs: 5000 },
};

function pollFromQuery(fallback) {
  const v = Number(new URLSearchParams(location.search).get('poll'));
  return Number.isFinite(v) && v > 0 ? Math.min(60000, Math.max(200, Math.round(v))) : fallback;
}

function wsUrl(path) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

function main() {
  const pollMs = pollFromQuery(config.pollMs);
  const client = new StatsClient(config.statsUrl, Math.max(config.pollTimeoutMs, pollMs));
  const kpis = new Kpis();
  const charts = new TrafficCharts({ rps: byId('chart-rps'), latency: byId('chart-latency'), windowMs: config.historyMs });
  byId('chartjs-missing').hidden = charts.available;
  const alarms = new AlarmLog({
    list: byId('alarm-list'), empty: byId('alarm-empty'), count: byId('alarm-count'), clear: byId('alarm-clear'),
    max: config.maxAlarms,
  });
  new Theme(byId('theme-toggle'), () => charts.applyTheme());

  const content = byId('content');
  const banner = byId('lb-unreachable');
  const bannerDetail = byId('lb-unreachable-detail');
  const updated = byId('updated');
  const tbody = byId('services-table').tBodies[0];
  const summary = byId('services-summary');
  setText(byId('poll-interval'), `${config.statsUrl} every ${pollMs / 1000} s`);

  const wsButton = byId('toggle-ws-heartbeat-btn');
  const wsState = byId('ws-state');
  const ws = new WsHeartbeat({
    url: wsUrl(config.wsHeartbeat.path),
    intervalMs: config.wsHeartbeat.intervalMs,
    reconnectMs: config.wsHeartbeat.reconnectMs,
    onChange: (state, hb) => {
      setText(wsState, state);
      wsButton.dataset.state = state;
      wsButton.setAttribute('aria-pressed', String(hb.enabled));
      wsButton.title = hb.enabled
        ? `Heartbeat on: ${hb.sent} sent, ${hb.acks} answered, ${hb.drops} drops. Click to stop.`
        : 'Keep a WebSocket to the load balancer open and send a heartbeat every 5 s, so the system is not reported IDLE';
    },
  });
  wsButton.addEventListener('click', () => ws.toggle());

  if (config.heartbeat.enabled) {
    new HttpHeartbeat({ url: config.heartbeat.url, intervalMs: config.heartbeat.intervalMs }).start();
  }

  let lastOk = 0;
  let failures = 0;

  function showUpdated(now) {
    if (!lastOk) return;
    const stale = now - lastOk > pollMs * 3;
    updated.dataset.stale = String(stale);
    setText(updated, `updated ${ago(now - lastOk)}`);
    updated.title = `last answer at ${clock(lastOk)}`;
  }

  function onStats(stats, now) {
    lastOk = now;
    failures = 0;
    banner.hidden = true;
    content.dataset.stale = 'false';
    alarms.lbUp(now);
    // One panel failing on odd data must not stop the others or the loop.
    const serverNow = parseTime(stats.timestamp) ?? now;
    for (const [name, fn] of [
      ['kpis', () => kpis.render(stats)],
      ['charts', () => charts.push(now, stats)],
      ['services', () => renderServices(tbody, summary, stats, serverNow)],
      ['alarms', () => alarms.observe(stats, now)],
    ]) {
      try {
        fn();
      } catch (err) {
        console.error(`dashboard: rendering ${name} failed`, err);
      }
    }
    showUpdated(now);
  }

  function onError(err, now) {
    failures++;
    banner.hidden = false;
    content.dataset.stale = 'true';
    const since = lastOk ? `Last answer ${ago(now - lastOk)} (${clock(lastOk)}).` : 'No answer yet.';
    setText(bannerDetail, `${err.message}. ${since} Retrying every ${pollMs / 1000} s (attempt ${failures}).`);
    alarms.lbDown(err.message, now);
    charts.gap(now);
    showUpdated(now);
  }

  // A chain of timeouts rather than setInterval: a slow answer never
  // overlaps the next poll.
  async function poll() {
    const started = Date.now();
    try {
      const stats = await client.fetch();
      onStats(stats, Date.now());
    } catch (err) {
      onError(err, Date.now());
    }
    setTimeout(poll, Math.max(0, pollMs - (Date.now() - started)));
  }

  setInterval(() => {
    const now = Date.now();
    showUpdated(now);
    alarms.tick(now);
  }, 1000);
  poll();
}

main();
