// The last hour of the room, one point a second: online connections and comments per
// second, drawn with uPlot (vendor/uplot, loaded before this module runs).
import { h } from './dom.js';
import { t } from './i18n.js';

const SPAN_S = 3600;

export class RoomChart {
  constructor() {
    this.times = [];
    this.online = [];
    this.cps = [];
    this.plot = null;
    this.box = h('div', { class: 'chart-box' });
    this.summary = h('figcaption', { class: 'chart-summary', 'aria-live': 'off' });
    this.element = h(
      'figure',
      { class: 'chart', 'aria-labelledby': 'chart-title' },
      h('h2', { id: 'chart-title', i18n: 'chart.title' }),
      this.box,
      this.summary,
    );
    this.resize = new ResizeObserver(() => this.fit());
  }

  /** Draw once the figure is in the document (uPlot measures nothing itself). */
  mount() {
    this.resize.observe(this.box);
    this.build();
  }

  build() {
    if (this.plot) this.plot.destroy();
    const uPlot = globalThis.uPlot;
    if (!uPlot) return;
    const style = getComputedStyle(document.documentElement);
    const online = style.getPropertyValue('--chart-online').trim() || '#2563eb';
    const cps = style.getPropertyValue('--chart-cps').trim() || '#dc2626';
    this.plot = new uPlot(
      {
        width: Math.max(200, this.box.clientWidth),
        height: 200,
        scales: { x: { time: true }, n: { auto: true }, c: { auto: true } },
        series: [
          {},
          { label: t('chart.online'), scale: 'n', stroke: online, width: 2 },
          { label: t('chart.cps'), scale: 'c', stroke: cps, width: 1 },
        ],
        // Whole seconds and up: a point is one second.
        axes: [
          { incrs: [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600] },
          { scale: 'n' },
          { scale: 'c', side: 1, grid: { show: false } },
        ],
        legend: { live: false },
      },
      [this.times, this.online, this.cps],
      this.box,
    );
  }

  fit() {
    if (this.plot && this.box.clientWidth > 0) {
      this.plot.setSize({ width: this.box.clientWidth, height: 200 });
    }
  }

  /** One second's point: `when` in Unix seconds. */
  push(when, online, cps) {
    this.times.push(when);
    this.online.push(online);
    this.cps.push(cps);
    while (this.times.length && this.times[0] <= when - SPAN_S) {
      this.times.shift();
      this.online.shift();
      this.cps.shift();
    }
    if (this.plot) this.plot.setData([this.times, this.online, this.cps]);
    const lastMinute = this.cps.slice(-60).reduce((a, b) => a + b, 0);
    this.summary.dataset.comments = String(lastMinute);
    this.summary.dataset.online = String(online);
    this.summary.dataset.i18n = 'chart.summary';
    this.summary.dataset.i18nArgs = JSON.stringify({ comments: lastMinute, online });
    this.summary.textContent = t('chart.summary', { comments: lastMinute, online });
  }

  destroy() {
    this.resize.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}
