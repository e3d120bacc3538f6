// Draws the charts of a page with Apache ECharts (served by this node).  A chart is an element
// with class "chart" (and no id: htmx would copy the style ECharts gives it onto the element
// that replaces it, which the CSP refuses) whose data-chart attribute holds JSON built by the
// server:
//   {"kind": "line", "x": [labels], "y": ["decimal strings"], "labels": ["formatted"], "name": "..."}
// The y values are only geometry; every amount a person reads is the server's formatted label.
"use strict";

function drawChart(element) {
  if (window.echarts.getInstanceByDom(element)) return; // drawn already (a first htmx:load)
  const spec = JSON.parse(element.dataset.chart);
  const chart = window.echarts.init(element, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    grid: { left: 8, right: 8, top: 24, bottom: 8, containLabel: true },
    tooltip: {
      trigger: "axis",
      formatter: (items) => {
        const item = items[0];
        return `${spec.x[item.dataIndex]}: ${spec.labels[item.dataIndex]}`;
      },
      renderMode: "richText",
    },
    xAxis: { type: "category", data: spec.x, boundaryGap: false },
    yAxis: { type: "value", scale: true },
    series: [{ name: spec.name, type: spec.kind || "line", data: spec.y.map(Number), step: "end", areaStyle: {} }],
    aria: { enabled: true, label: { description: spec.description || "" } },
  });
  window.addEventListener("resize", () => chart.resize());
}

function drawCharts(root) {
  if (root && root.querySelectorAll) root.querySelectorAll(".chart[data-chart]").forEach(drawChart);
}

document.addEventListener("DOMContentLoaded", () => drawCharts(document));
// A part htmx swapped in (a live refresh of the home) brings its chart along.
document.addEventListener("htmx:load", (event) => drawCharts(event.detail.elt));
