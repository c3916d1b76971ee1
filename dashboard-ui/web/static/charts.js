// The two time-series charts (requests per second; avg/p95/p99 latency)
// over a sliding window, drawn by Chart.js. Chart.js is a classic script
// (vendor/chart.umd.min.js) that defines window.Chart; without it the
// charts say so and the rest of the page works.

import { Theme } from './theme.js';
import { num } from './format.js';

const pad = (n) => String(n).padStart(2, '0');
const hhmm = (t) => {
  const d = new Date(t);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const hhmmss = (t) => `${hhmm(t)}:${pad(new Date(t).getSeconds())}`;

export class TrafficCharts {
  /**
   * @param {object} o
   * @param {HTMLCanvasElement} o.rps
   * @param {HTMLCanvasElement} o.latency
   * @param {number} o.windowMs  how much history to show and keep
   */
  constructor({ rps, latency, windowMs = 5 * 60 * 1000 }) {
    this.windowMs = windowMs;
    this.series = { rps: [], avg: [], p95: [], p99: [] };
    this.firstAt = 0;
    this.tickStep = 15 * 1000;
    this.available = typeof window.Chart === 'function';
    if (!this.available) {
      for (const canvas of [rps, latency]) {
        const note = document.createElement('p');
        note.className = 'chart-missing';
        note.textContent = 'Chart.js is missing: run `make deps` and rebuild.';
        canvas.replaceWith(note);
      }
      return;
    }
    this.rpsChart = new window.Chart(rps, this.config([
      { label: 'req/s', data: this.series.rps, colorVar: '--chart-rps', fill: true },
    ], false, 'req/s'));
    this.latencyChart = new window.Chart(latency, this.config([
      { label: 'avg', data: this.series.avg, colorVar: '--chart-avg', fill: true },
      { label: 'p95', data: this.series.p95, colorVar: '--chart-p95' },
      { label: 'p99', data: this.series.p99, colorVar: '--chart-p99', dash: [4, 4] },
    ], true, 'ms'));
    this.applyTheme();
  }

  /** push appends one poll's figures at time t (ms). */
  push(t, stats) {
    const point = (v) => ({ x: t, y: num(v) });
    this.series.rps.push(point(stats.requests_per_second));
    // With no request in the window there is no latency to draw, rather than a zero.
    const idle = num(stats.total_requests) === 0;
    this.series.avg.push(point(idle ? null : stats.avg_response_time_ms));
    this.series.p95.push(point(idle ? null : stats.p95_response_time_ms));
    this.series.p99.push(point(idle ? null : stats.p99_response_time_ms));
    this.redraw(t);
  }

  /** gap breaks the lines at t: a failed poll is unknown, not zero. */
  gap(t) {
    for (const s of Object.values(this.series)) s.push({ x: t, y: null });
    this.redraw(t);
  }

  redraw(now) {
    const from = now - this.windowMs;
    if (!this.firstAt) this.firstAt = now;
    for (const s of Object.values(this.series)) {
      let drop = 0;
      while (drop < s.length && s[drop].x < from) drop++;
      if (drop) s.splice(0, drop);
    }
    if (!this.available) return;
    // The axis grows from one minute to the full window as history builds
    // up, so that the first minutes are not squeezed against the right edge.
    const span = Math.min(this.windowMs, Math.max(60 * 1000, now - this.firstAt));
    this.tickStep = span <= 2 * 60 * 1000 ? 15 * 1000 : 60 * 1000;
    for (const chart of [this.rpsChart, this.latencyChart]) {
      chart.options.scales.x.min = now - span;
      chart.options.scales.x.max = now;
      chart.update('none');
    }
  }

  /** applyTheme re-reads the colours after a theme switch. */
  applyTheme() {
    if (!this.available) return;
    const text = Theme.color('--text-muted');
    const grid = Theme.color('--grid');
    for (const chart of [this.rpsChart, this.latencyChart]) {
      const o = chart.options;
      for (const axis of [o.scales.x, o.scales.y]) {
        axis.ticks.color = text;
        axis.grid.color = grid;
        axis.border.color = grid;
      }
      o.plugins.legend.labels.color = text;
      o.plugins.tooltip.backgroundColor = Theme.color('--tooltip-bg');
      o.plugins.tooltip.titleColor = Theme.color('--text');
      o.plugins.tooltip.bodyColor = Theme.color('--text');
      o.plugins.tooltip.borderColor = grid;
      for (const ds of chart.data.datasets) {
        ds.borderColor = Theme.color(ds.colorVar);
        ds.pointBackgroundColor = ds.borderColor;
      }
      chart.update('none');
    }
  }

  config(datasets, legend, unit) {
    return {
      type: 'line',
      data: {
        datasets: datasets.map((d) => ({
          label: d.label,
          data: d.data,
          colorVar: d.colorVar,
          borderWidth: 2,
          borderDash: d.dash || [],
          pointRadius: 0,
          pointHoverRadius: 3,
          tension: 0.25,
          spanGaps: false,
          fill: d.fill ? 'origin' : false,
          backgroundColor: d.fill ? (ctx) => gradient(ctx, Theme.color(d.colorVar)) : 'transparent',
        })),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        parsing: false,
        normalized: true,
        interaction: { mode: 'index', intersect: false },
        layout: { padding: { top: 4, right: 6 } },
        scales: {
          x: {
            type: 'linear',
            ticks: { callback: (v) => (this.tickStep < 60000 ? hhmmss(v) : hhmm(v)), maxRotation: 0, autoSkipPadding: 16, font: { size: 11 } },
            // Ticks on round times (every 15 s or every minute), not at the
            // window's edge.
            afterBuildTicks: (axis) => {
              const step = this.tickStep;
              const ticks = [];
              for (let v = Math.ceil(axis.min / step) * step; v <= axis.max; v += step) ticks.push({ value: v });
              axis.ticks = ticks;
            },
            grid: { display: false },
            border: {},
          },
          y: {
            beginAtZero: true,
            suggestedMax: 1,
            ticks: { maxTicksLimit: 5, precision: 0, font: { size: 11 } },
            grid: {},
            border: { display: false },
          },
        },
        plugins: {
          legend: {
            display: legend,
            position: 'top',
            align: 'end',
            labels: { usePointStyle: true, pointStyle: 'line', boxWidth: 18, font: { size: 11 } },
          },
          tooltip: {
            borderWidth: 1,
            padding: 10,
            callbacks: {
              title: (items) => (items.length ? hhmmss(items[0].parsed.x) : ''),
              label: (item) => ` ${item.dataset.label}: ${item.parsed.y === null ? '—' : Number(item.parsed.y).toFixed(item.parsed.y < 10 ? 2 : 0)} ${unit}`,
            },
          },
        },
      },
    };
  }
}

/** gradient fills the area under a line, fading to transparent. */
function gradient(ctx, color) {
  const { chart } = ctx;
  const area = chart.chartArea;
  if (!area) return 'transparent';
  const g = chart.ctx.createLinearGradient(0, area.top, 0, area.bottom);
  g.addColorStop(0, withAlpha(color, 0.28));
  g.addColorStop(1, withAlpha(color, 0));
  return g;
}

/** withAlpha turns #rrggbb into rgba(); other forms are returned as they are. */
function withAlpha(color, alpha) {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return color;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}
