// Draws the payment graph around a case's customer with Apache ECharts (served by this node).
// The element's data-graph holds JSON built by the server: nodes {id, name, kind, center} and
// edges {source, target, label, flagged}; every text a person reads was formatted there.  No
// inline script or style (the CSP forbids them); the chart has no id (see chart.js).
"use strict";

function drawGraph(element) {
  if (window.echarts.getInstanceByDom(element)) return;
  const spec = JSON.parse(element.dataset.graph);
  const css = getComputedStyle(document.documentElement);
  const bad = css.getPropertyValue("--bad").trim() || "#b00020";
  const link = css.getPropertyValue("--link").trim() || "#0b57d0";
  const muted = css.getPropertyValue("--muted").trim() || "#666";
  const chart = window.echarts.init(element, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    tooltip: { renderMode: "richText", formatter: (p) => (p.dataType === "edge" ? p.data.label : `${p.data.name} · ${p.data.kind}`) },
    aria: { enabled: true, label: { description: spec.description || "" } },
    series: [{
      type: "graph",
      layout: "force",
      roam: true,
      draggable: true,
      force: { repulsion: 220, edgeLength: [60, 140] },
      edgeSymbol: ["none", "arrow"],
      edgeSymbolSize: 8,
      label: { show: true, position: "right", formatter: (p) => p.data.name },
      data: spec.nodes.map((n) => ({
        id: n.id, name: n.name, kind: n.kind,
        symbolSize: n.center ? 28 : 14,
        itemStyle: { color: n.center ? bad : link },
      })),
      links: spec.edges.map((e) => ({
        source: e.source, target: e.target, label: e.label,
        lineStyle: { color: e.flagged ? bad : muted, width: e.flagged ? 3 : 1, curveness: 0.15 },
      })),
    }],
  });
  const resize = () => { if (!chart.isDisposed()) chart.resize(); };
  window.addEventListener("resize", resize);
  // Leaving the page (a step's redirect reloads it) stops the force layout's timers first; a
  // page the browser restores from its cache draws the graph again.
  window.addEventListener("pagehide", () => {
    window.removeEventListener("resize", resize);
    chart.dispose();
  }, { once: true });
}

window.addEventListener("pageshow", (event) => {
  if (event.persisted) document.querySelectorAll(".chart[data-graph]").forEach(drawGraph);
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".chart[data-graph]").forEach(drawGraph);
});
