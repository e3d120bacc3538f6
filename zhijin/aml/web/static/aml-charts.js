// Draws the regulator's flow charts with Apache ECharts: one chart per element with
// data-series-chart, JSON built by the server: {x: [days], series: [{name, y: ["decimal
// strings"], labels: ["formatted"]}], description}.  The y values are only geometry; every
// amount a person reads is the server's label.  No inline script or style (the CSP).
"use strict";

function drawSeriesChart(element) {
  if (window.echarts.getInstanceByDom(element)) return;
  const spec = JSON.parse(element.dataset.seriesChart);
  const chart = window.echarts.init(element, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    grid: { left: 8, right: 8, top: 40, bottom: 8, containLabel: true },
    legend: { type: "scroll", top: 0 },
    tooltip: {
      trigger: "axis",
      renderMode: "richText",
      formatter: (items) => [spec.x[items[0].dataIndex]].concat(
        items.map((item) => `${item.seriesName}: ${spec.series[item.seriesIndex].labels[item.dataIndex]}`)).join("\n"),
    },
    xAxis: { type: "category", data: spec.x },
    yAxis: { type: "value" },
    series: spec.series.map((s) => ({ name: s.name, type: "bar", data: s.y.map(Number) })),
    aria: { enabled: true, label: { description: spec.description || "" } },
  });
  window.addEventListener("resize", () => chart.resize());
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".chart[data-series-chart]").forEach(drawSeriesChart);
});
