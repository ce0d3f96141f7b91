/* global document, getComputedStyle, ResizeObserver */
/**
 * Time charts (uPlot). Until a chart has two points it shows no axes, only a note that it is
 * waiting for data: uPlot's default range for an empty time axis would read as years 2027-2029.
 */
import uPlot from './vendor/uPlot.esm.js';

const CHART_HEIGHT = 200;

// ---- charts -----------------------------------------------------------------------------------

function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Axis steps of 1, 2, 5, 10, 20, 50…: a count of events has no fractions. */
const INTEGER_STEPS = Array.from(
  { length: 27 },
  (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3),
);

function makeChart(element, series, { integers = false } = {}) {
  const axis = {
    stroke: cssColor('--muted'),
    grid: { stroke: cssColor('--grid'), width: 1 },
    ticks: { stroke: cssColor('--grid'), width: 1 },
  };
  const width = () => Math.max(Math.floor(element.clientWidth), 280);
  const chart = new uPlot(
    {
      width: width(),
      height: CHART_HEIGHT,
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [axis, { ...axis, size: 64, ...(integers ? { incrs: INTEGER_STEPS } : {}) }],
      series: [
        { label: 'time', value: '{HH}:{mm}:{ss}' },
        ...series.map((s) => ({
          label: s.label,
          stroke: cssColor(s.color),
          width: 2,
          points: { show: false },
          value: (_u, v) => (v === null || v === undefined ? '–' : s.format(v)),
        })),
      ],
    },
    [[], ...series.map(() => [])],
    element,
  );
  // Before two points there is no time range to show: a note instead of an invented axis.
  const note = document.createElement('p');
  note.className = 'chart-empty';
  note.textContent = 'Waiting for data…';
  element.append(note);
  element.dataset.empty = 'true';
  const setData = chart.setData.bind(chart);
  chart.setData = (data, resetScales) => {
    const empty = (data[0]?.length ?? 0) < 2;
    if (empty) element.dataset.empty = 'true';
    else delete element.dataset.empty;
    note.hidden = !empty;
    setData(data, resetScales);
  };
  let lastWidth = width();
  new ResizeObserver(() => {
    if (width() === lastWidth) return;
    lastWidth = width();
    chart.setSize({ width: lastWidth, height: CHART_HEIGHT });
  }).observe(element);
  return chart;
}

export { makeChart };
