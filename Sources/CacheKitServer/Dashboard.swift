/// `GET /dashboard`: one self-contained page (no external scripts) that polls `/stats` every second and draws
/// the hit rate over time, hits per layer, latency cached vs upstream, money saved, and for the semantic layer the
/// audit's estimated precision with its 95 % interval and the guards' refusals.
enum Dashboard {
    static let html = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CacheKit</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;background:#fafafa;color:#222}
h1{font-size:20px;margin:0 0 16px}
.grid{display:grid;grid-template-columns:repeat(2,minmax(360px,1fr));gap:16px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px}
.card h2{font-size:14px;margin:0 0 8px;color:#555}
.big{font-size:28px;font-weight:600}
.row{display:flex;gap:32px}
canvas{width:100%;height:180px}
</style></head>
<body>
<h1>CacheKit — live</h1>
<div class="grid">
  <div class="card"><h2>Totals</h2><div class="row">
    <div><div class="big" id="rate">–</div>hit rate</div>
    <div><div class="big" id="requests">–</div>requests</div>
    <div><div class="big" id="saved">–</div>saved (USD)</div>
    <div><div class="big" id="tokens">–</div>tokens saved</div></div></div>
  <div class="card"><h2>Hit rate over time</h2><canvas id="history" width="600" height="180"></canvas></div>
  <div class="card"><h2>Hits per layer</h2><canvas id="layers" width="600" height="180"></canvas></div>
  <div class="card"><h2>Latency p50 / p95 (ms): cached vs upstream</h2><canvas id="latency" width="600" height="180"></canvas></div>
  <div class="card"><h2>Semantic hits: audited precision, guards</h2><div class="row">
    <div><div class="big" id="precision">–</div>estimated precision <span id="interval"></span></div>
    <div><div class="big" id="audits">–</div>audited hits</div></div>
    <div>refused by the guards: <span id="guarded">–</span></div></div>
</div>
<script>
const history = [];
function bars(canvas, labels, values, colors, unit) {
  const c = canvas.getContext('2d'), w = canvas.width, h = canvas.height;
  c.clearRect(0, 0, w, h);
  const max = Math.max(1e-9, ...values), bw = (w - 40) / Math.max(1, values.length);
  c.font = '12px sans-serif';
  values.forEach((v, i) => {
    const bh = (h - 40) * v / max, x = 20 + i * bw;
    c.fillStyle = colors[i % colors.length]; c.fillRect(x + 6, h - 20 - bh, bw - 12, bh);
    c.fillStyle = '#222'; c.fillText(labels[i], x + 6, h - 4);
    c.fillText((Math.round(v * 100) / 100) + unit, x + 6, h - 24 - bh);
  });
}
function line(canvas, points) {
  const c = canvas.getContext('2d'), w = canvas.width, h = canvas.height;
  c.clearRect(0, 0, w, h);
  c.strokeStyle = '#ccc'; c.strokeRect(30, 10, w - 40, h - 30);
  c.fillStyle = '#222'; c.font = '12px sans-serif'; c.fillText('100%', 0, 16); c.fillText('0%', 8, h - 20);
  c.strokeStyle = '#2a7'; c.lineWidth = 2; c.beginPath();
  points.forEach((p, i) => {
    const x = 30 + (w - 40) * i / Math.max(1, points.length - 1), y = 10 + (h - 30) * (1 - p);
    i ? c.lineTo(x, y) : c.moveTo(x, y);
  });
  c.stroke();
}
async function refresh() {
  try {
    const s = await (await fetch('/stats')).json();
    document.getElementById('rate').textContent = (100 * s.hit_rate).toFixed(1) + '%';
    document.getElementById('requests').textContent = s.requests;
    document.getElementById('saved').textContent = s.cost_saved_usd.toFixed(4);
    document.getElementById('tokens').textContent = s.tokens_saved;
    history.push(s.hit_rate); if (history.length > 120) history.shift();
    line(document.getElementById('history'), history);
    const labels = s.layers.map(l => l.name), hits = s.layers.map(l => l.hits);
    if (s.semantic) { labels.push('semantic'); hits.push(s.semantic.hits); }
    labels.push('upstream'); hits.push(s.upstream_calls);
    bars(document.getElementById('layers'), labels, hits, ['#2a7', '#27a', '#a72', '#777'], '');
    if (s.semantic) {
      const a = s.semantic.audit || {};
      const p = a.estimated_precision, i = a.precision_interval;
      document.getElementById('precision').textContent = p == null ? 'no audits' : (100 * p).toFixed(1) + '%';
      document.getElementById('interval').textContent = i ? '(95%: ' + (100 * i[0]).toFixed(1) + '–' + (100 * i[1]).toFixed(1) + '%)' : '';
      document.getElementById('audits').textContent = (a.agreements || 0) + (a.disagreements || 0);
      const g = Object.entries(s.semantic.guarded || {}).map(([k, v]) => k + ' ' + v).join(', ');
      document.getElementById('guarded').textContent = g || 'none';
    }
    bars(document.getElementById('latency'), ['cached p50', 'cached p95', 'upstream p50', 'upstream p95'],
      [s.hit_latency.p50_ms, s.hit_latency.p95_ms, s.upstream_latency.p50_ms, s.upstream_latency.p95_ms],
      ['#2a7', '#2a7', '#a33', '#a33'], ' ms');
  } catch (e) { document.getElementById('rate').textContent = 'offline'; }
}
refresh(); setInterval(refresh, 1000);
</script>
</body></html>
"""#
}
