// The client of the load balancer's GET /stats (contract in the README).

/** StatsError is a failed poll, with a message fit for the banner. */
export class StatsError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = 'StatsError';
    this.status = status;
  }
}

/** StatsClient fetches /stats with a timeout; each call is independent. */
export class StatsClient {
  /**
   * @param {string} url       the stats URL, e.g. "/stats"
   * @param {number} timeoutMs  abort a poll after this long
   */
  constructor(url, timeoutMs) {
    this.url = url;
    this.timeoutMs = timeoutMs;
  }

  /** fetch returns the parsed answer or throws a StatsError. */
  async fetch() {
    const ctrl = new AbortController();
    // The timer covers the body too: a server that stalls mid-answer is as
    // unreachable as one that never answers.
    const timer = setTimeout(() => ctrl.abort(), this.timeoutMs);
    const aborted = (err) => err && err.name === 'AbortError';
    const late = `no answer within ${this.timeoutMs / 1000} s`;
    try {
      let resp;
      try {
        resp = await fetch(this.url, {
          cache: 'no-store',
          headers: { Accept: 'application/json' },
          signal: ctrl.signal,
        });
      } catch (err) {
        throw new StatsError(aborted(err) ? late : 'network error (connection refused or reset)');
      }
      if (!resp.ok) {
        throw new StatsError(`GET ${this.url} answered ${resp.status}`, resp.status);
      }
      let body;
      try {
        body = await resp.json();
      } catch (err) {
        throw new StatsError(aborted(err) ? late : `GET ${this.url} did not answer JSON`, resp.status);
      }
      if (!body || typeof body !== 'object' || Array.isArray(body)) {
        throw new StatsError(`GET ${this.url} answered an unexpected shape`, resp.status);
      }
      return body;
    } finally {
      clearTimeout(timer);
    }
  }
}
