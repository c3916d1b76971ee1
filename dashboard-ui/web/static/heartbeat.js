// Heartbeats tell the load balancer that someone is watching, so that a
// quiet system is not reported IDLE. The WebSocket heartbeat is the one the
// dashboard offers (a toggle); the HTTP one is off unless config.heartbeat
// turns it on, and the load balancer does not count it as traffic
// (X-Heartbeat: true): it only checks that the API answers.

/** The states the WebSocket heartbeat shows on its button. */
export const WS_OFF = 'OFF';
export const WS_CONNECTING = 'CONNECTING';
export const WS_ON = 'ON';

/**
 * WsHeartbeat keeps one WebSocket open while enabled: it sends "hb" at once
 * and then every intervalMs, and reconnects reconnectMs after a drop. While
 * disabled it holds no socket and no timer.
 */
export class WsHeartbeat {
  /**
   * @param {object} o
   * @param {string} o.url           ws:// or wss:// URL
   * @param {number} o.intervalMs    time between two "hb" messages
   * @param {number} o.reconnectMs   delay before reconnecting after a drop
   * @param {(state: string, hb: WsHeartbeat) => void} o.onChange  called on every state or counter change
   */
  constructor({ url, intervalMs = 5000, reconnectMs = 2000, onChange = () => {} }) {
    this.url = url;
    this.intervalMs = intervalMs;
    this.reconnectMs = reconnectMs;
    this.onChange = onChange;
    this.state = WS_OFF;
    this.enabled = false;
    this.sent = 0;
    this.acks = 0;
    this.drops = 0;
    this.ws = null;
    this.sendTimer = 0;
    this.reconnectTimer = 0;
  }

  toggle() {
    if (this.enabled) this.disable();
    else this.enable();
  }

  enable() {
    if (this.enabled) return;
    this.enabled = true;
    this.connect();
  }

  disable() {
    this.enabled = false;
    clearTimeout(this.reconnectTimer);
    this.stopSending();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onclose = ws.onerror = ws.onmessage = null;
      try {
        ws.close(1000, 'heartbeat off');
      } catch {
        // Closing a socket that never opened may throw; it is gone either way.
      }
    }
    this.setState(WS_OFF);
  }

  connect() {
    this.setState(WS_CONNECTING);
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.setState(WS_ON);
      this.send();
      this.sendTimer = setInterval(() => this.send(), this.intervalMs);
    };
    ws.onmessage = () => {
      this.acks++;
      this.onChange(this.state, this);
    };
    // A failed connection fires error then close; close alone handles both.
    ws.onerror = () => {};
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopSending();
      if (this.state === WS_ON) this.drops++;
      if (this.enabled) this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    clearTimeout(this.reconnectTimer);
    this.setState(WS_CONNECTING);
    this.reconnectTimer = setTimeout(() => {
      if (this.enabled) this.connect();
    }, this.reconnectMs);
  }

  send() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send('hb');
    this.sent++;
    this.onChange(this.state, this);
  }

  stopSending() {
    clearInterval(this.sendTimer);
    this.sendTimer = 0;
  }

  setState(state) {
    this.state = state;
    this.onChange(state, this);
  }
}

/**
 * HttpHeartbeat sends GET url with X-Heartbeat: true every intervalMs while
 * started. The load balancer leaves such requests out of its traffic
 * figures, so it keeps nothing out of IDLE; it is a reachability probe.
 */
export class HttpHeartbeat {
  constructor({ url, intervalMs = 5000, timeoutMs = 3000, onResult = () => {} }) {
    this.url = url;
    this.intervalMs = intervalMs;
    this.timeoutMs = timeoutMs;
    this.onResult = onResult;
    this.timer = 0;
  }

  start() {
    if (this.timer) return;
    const beat = async () => {
      const ctrl = new AbortController();
      const t = setTimeout(() => ctrl.abort(), this.timeoutMs);
      try {
        const resp = await fetch(this.url, { headers: { 'X-Heartbeat': 'true' }, cache: 'no-store', signal: ctrl.signal });
        this.onResult(resp.ok);
      } catch {
        this.onResult(false);
      } finally {
        clearTimeout(t);
      }
    };
    beat();
    this.timer = setInterval(beat, this.intervalMs);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
  }
}
