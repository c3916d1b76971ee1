// Alarms: what changed, not what is. The log turns successive /stats
// answers into events (a service went OFFLINE, came back ONLINE; the load
// balancer became unreachable), keeps the newest first, at most `max`, and
// never repeats an event for a state that did not change.

import { el, setText, statusOf } from './dom.js';
import { ago, clock, duration } from './format.js';

const OFFLINE = 'OFFLINE';
const ONLINE = 'ONLINE';

export class AlarmLog {
  /**
   * @param {object} o
   * @param {HTMLElement} o.list      the <ol> of alarms
   * @param {HTMLElement} o.empty     shown when there is none
   * @param {HTMLElement} o.count     the count badge
   * @param {HTMLButtonElement} o.clear  empties the list
   * @param {number} [o.max]
   */
  constructor({ list, empty, count, clear, max = 50 }) {
    this.listEl = list;
    this.emptyEl = empty;
    this.countEl = count;
    this.clearBtn = clear;
    this.max = max;
    this.alarms = [];
    this.seq = 0;
    // key -> { status, since } : the last state seen of each watched thing.
    this.states = new Map();
    this.lbDownSince = 0;
    this.clearBtn.addEventListener('click', () => {
      this.alarms = [];
      this.render();
    });
  }

  /** observe compares one /stats answer with the previous ones. */
  observe(stats, now = Date.now()) {
    const services = Array.isArray(stats.services) ? stats.services : [];
    let userService = 'UNKNOWN';
    for (const svc of services) {
      if (!svc || typeof svc.name !== 'string') continue;
      const status = statusOf(svc.status);
      if (status === 'UNKNOWN') continue;
      if (svc.name === 'user-service') userService = status;
      const prev = this.states.get(`service:${svc.name}`);
      const detail = offlineDetail(svc);
      this.track(`service:${svc.name}`, svc.name, status, now, 'service', detail);
      // Instance events matter when the service as a whole stays up (one
      // replica of several died); otherwise the service's own event says it.
      const instances = Array.isArray(svc.instances) ? svc.instances : [];
      const quiet = instances.length < 2 || status !== ONLINE || (prev && prev.status !== ONLINE);
      for (const inst of instances) {
        if (!inst || typeof inst.instance !== 'string') continue;
        const s = statusOf(inst.status);
        if (s === 'UNKNOWN') continue;
        const err = typeof inst.error === 'string' ? inst.error : '';
        this.track(`instance:${svc.name}/${inst.instance}`, `${inst.instance} (${svc.name})`, s, now, 'instance', err, quiet);
      }
    }
    // user-service reports the stores; while it is down their state is unknown.
    if (userService === ONLINE) {
      for (const store of ['database', 'cache']) {
        const s = statusOf(stats[store] && stats[store].status);
        if (s !== 'UNKNOWN') this.track(`store:${store}`, store, s, now, 'store', '');
      }
    }
  }

  /** track records a state and raises an alarm when it changed. */
  track(key, label, status, now, kind, detail, quiet = false) {
    const prev = this.states.get(key);
    const changed = !prev || prev.status !== status;
    this.states.set(key, { status, since: changed ? now : prev.since });
    if (quiet || !changed) return;
    if (status === OFFLINE) {
      const title = prev ? `${label} went OFFLINE` : `${label} is OFFLINE`;
      this.add({ key, kind, state: OFFLINE, level: kind === 'service' ? 'down' : 'warn', title, detail, time: now });
    } else if (prev) {
      this.add({ key, kind, state: ONLINE, level: 'up', title: `${label} is back ONLINE`, detail: `after ${duration(now - prev.since)} offline`, time: now });
    }
  }

  /** lbDown records that a poll failed; only the first failure in a row is an alarm. */
  lbDown(message, now = Date.now()) {
    if (this.lbDownSince) return;
    this.lbDownSince = now;
    this.add({ key: 'lb', kind: 'lb', state: OFFLINE, level: 'down', title: 'Load balancer unreachable', detail: message, time: now });
  }

  /** lbUp records a successful poll after failures. */
  lbUp(now = Date.now()) {
    if (!this.lbDownSince) return;
    const since = this.lbDownSince;
    this.lbDownSince = 0;
    this.add({ key: 'lb', kind: 'lb', state: ONLINE, level: 'up', title: 'Load balancer reachable again', detail: `after ${duration(now - since)}`, time: now });
  }

  add(alarm) {
    const last = this.alarms.find((a) => a.key === alarm.key);
    if (last && last.state === alarm.state) return; // dedupe: same state twice is no news
    this.alarms.unshift({ id: ++this.seq, ...alarm });
    if (this.alarms.length > this.max) this.alarms.length = this.max;
    this.render();
  }

  /** render rebuilds the list (at most max items) and the relative times. */
  render(now = Date.now()) {
    const items = this.alarms.map((a) =>
      el('li', { class: 'alarm', 'data-level': a.level, 'data-state': a.state, 'data-key': a.key },
        el('span', { class: 'alarm-icon', 'aria-hidden': 'true' }),
        el('div', { class: 'alarm-body' },
          el('p', { class: 'alarm-title' }, a.title),
          a.detail ? el('p', { class: 'alarm-detail' }, a.detail) : null),
        el('time', { class: 'alarm-time', datetime: new Date(a.time).toISOString(), title: new Date(a.time).toString() },
          clock(a.time), el('small', { 'data-time': a.time }, ago(now - a.time)))));
    this.listEl.replaceChildren(...items);
    this.emptyEl.hidden = items.length > 0;
    this.countEl.hidden = items.length === 0;
    setText(this.countEl, items.length);
    this.clearBtn.disabled = items.length === 0;
  }

  /** tick refreshes the "12 s ago" labels without rebuilding the list. */
  tick(now = Date.now()) {
    for (const small of this.listEl.querySelectorAll('small[data-time]')) {
      setText(small, ago(now - Number(small.dataset.time)));
    }
  }
}

/** offlineDetail says why a service is down, from its instances' errors. */
function offlineDetail(svc) {
  const instances = Array.isArray(svc.instances) ? svc.instances : [];
  const err = instances.map((i) => i && i.error).find((e) => typeof e === 'string' && e !== '');
  const online = Number.isFinite(svc.online_instances) ? svc.online_instances : null;
  const total = Number.isFinite(svc.total_instances) ? svc.total_instances : null;
  const counts = online !== null && total !== null ? `${online}/${total} instances online` : '';
  return [counts, err].filter(Boolean).join(' · ');
}
