// The studio page: controls made from the scenario schema, checked by the server's own loader, runs through the API.
// Text from data is only ever set as textContent, never parsed as markup.
'use strict';

const TEXT = {
  en: {title: 'What-if studio', scenario: 'Scenario', present: 'Presentation', add: 'Add lever', years: 'Years', start: 'start', end: 'end',
    advanced: 'Advanced: parameters, seed, members', seed: 'seed', members: 'paired members (1-8)', parameter: 'parameter', value: 'value',
    unit: 'unit', range: 'range', run: 'Run', save: 'Save scenario', export: 'Export', 'view-scenario': 'Scenario', 'view-baseline': 'Baseline',
    'view-difference': 'Difference', targets: '2027 targets', headline: 'Against the baseline', spend: 'Spend by lever', on: 'on',
    metric: 'figure', scen: 'scenario', base: 'baseline', diff: 'difference', interval: '90% paired interval', checking: 'checking…',
    ready: 'ready to run', queued: 'queued', running: 'running', done: 'done', cached: 'done (from the cache)', failed: 'failed', cancelled: 'cancelled',
    perYuan: 'Core revenue difference per yuan of extra spend', noSpend: 'No extra spend: revenue per yuan is undefined',
    revenue_cny: 'core revenue (亿元)', total_scale_cny: 'total scale (亿元)', firms: 'firms', leaders_100bn: '千亿 firms', remove: 'remove',
    lang: '中文', grade: 'evidence'},
  zh: {title: '情景工作室', scenario: '情景', present: '演示', add: '添加政策', years: '年份', start: '起始', end: '结束',
    advanced: '高级：参数、随机种子、配对成员', seed: '随机种子', members: '配对成员（1-8）', parameter: '参数', value: '取值',
    unit: '单位', range: '范围', run: '运行', save: '保存情景', export: '导出', 'view-scenario': '情景', 'view-baseline': '基准',
    'view-difference': '差值', targets: '2027 目标', headline: '与基准相比', spend: '各项政策支出', on: '启用',
    metric: '指标', scen: '情景', base: '基准', diff: '差值', interval: '配对 90% 区间', checking: '校验中…',
    ready: '可以运行', queued: '排队中', running: '运行中', done: '完成', cached: '完成（缓存）', failed: '失败', cancelled: '已取消',
    perYuan: '每元新增支出带来的核心营收差值', noSpend: '无新增支出：每元营收无定义',
    revenue_cny: '核心营收（亿元）', total_scale_cny: '总规模（亿元）', firms: '企业数', leaders_100bn: '千亿级企业', remove: '删除',
    lang: 'English', grade: '证据等级'},
};

const state = {schema: null, scenarios: {}, scenario: null, off: new Set(), lang: 'en', run: null, view: 'scenario', valid: false, timer: 0, checks: 0};
const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[state.lang][key] || key;

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') node.textContent = v; else if (k in node) node[k] = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {credentials: 'same-origin'} :
    {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  return {status: response.status, data: await response.json()};
}

function leverDef(kind) {
  const defs = state.schema.scenario.$defs;
  const ref = state.schema.scenario.properties.levers.items.discriminator.mapping[kind];
  return defs[ref.split('/').pop()];
}

function fieldControl(def, value, path) {
  const type = def.type || (def.anyOf || []).map((a) => a.type).find((x) => x && x !== 'null');
  if (type === 'boolean') return el('input', {type: 'checkbox', checked: !!value, 'data-path': path, 'data-kind': 'boolean'});
  if (type === 'array' && def.items && def.items.type === 'string') {
    return el('input', {value: (value || []).join(', '), 'data-path': path, 'data-kind': 'list'});
  }
  if (type === 'integer' || type === 'number' || type === 'string') {
    return el('input', {value: value === undefined || value === null ? '' : String(value), 'data-path': path, 'data-kind': type});
  }
  return el('textarea', {value: JSON.stringify(value === undefined ? null : value), 'data-path': path, 'data-kind': 'json'});
}

function readControl(input) {
  const kind = input.dataset.kind;
  const text = input.value.trim();
  if (kind === 'boolean') return input.checked;
  if (kind === 'list') return text ? text.split(',').map((s) => s.trim()).filter(Boolean) : [];
  if (kind === 'json') { try { return JSON.parse(text); } catch (e) { return text; } }
  if (kind === 'integer' || kind === 'number') return text !== '' && !isNaN(Number(text)) ? Number(text) : text;
  return text;
}

function renderLevers() {
  const box = $('levers');
  box.replaceChildren();
  state.scenario.levers.forEach((lever, i) => {
    const def = leverDef(lever.kind);
    const on = el('input', {type: 'checkbox', checked: !state.off.has(i), 'data-lever-on': String(i)});
    on.addEventListener('change', () => { on.checked ? state.off.delete(i) : state.off.add(i); renderLevers(); changed(); });
    const remove = el('button', {type: 'button', text: t('remove')});
    remove.addEventListener('click', () => { state.scenario.levers.splice(i, 1); state.off = new Set(); renderLevers(); changed(); });
    const nth = state.scenario.levers.slice(0, i).filter((other) => other.kind === lever.kind).length;  // the label outputs and levers_set use
    const rows = [el('legend', {}, [on, ` ${lever.kind}#${nth} `, remove])];
    for (const [name, prop] of Object.entries(def.properties)) {
      if (name === 'kind') continue;
      const input = fieldControl(prop, lever[name] !== undefined ? lever[name] : prop.default, `lever.${i}.${name}`);
      input.title = prop.description || '';
      input.addEventListener('change', () => { lever[name] = readControl(input); changed(); });
      rows.push(el('label', {}, [el('span', {text: name}), input]));
    }
    rows.push(el('p', {className: 'error', 'data-error-for': `lever.${i}`}));
    box.append(el('fieldset', {className: state.off.has(i) ? 'off' : '', 'data-lever': String(i)}, rows));
  });
}

function renderParams() {
  const body = $('params').tBodies[0];
  body.replaceChildren();
  const given = state.scenario.params || {};
  for (const p of state.schema.params) {
    const input = el('input', {value: given[p.name] !== undefined ? String(given[p.name]) : '', placeholder: String(p.default),
      'data-path': `params.${p.name}`, 'data-kind': 'number', 'data-param': p.name});
    input.addEventListener('change', () => changed());
    const name = el('td', {text: p.name + (p.grade ? ` (${t('grade')}: ${p.grade})` : ''), title: p.doc});
    body.append(el('tr', {}, [name, el('td', {}, [input]), el('td', {text: p.unit}), el('td', {text: `${p.lo} – ${p.hi}`})]));
    body.append(el('tr', {}, [el('td', {colSpan: 4}, [el('p', {className: 'error', 'data-error-for': `params.${p.name}`})])]));
  }
}

function loadScenario(data) {
  state.scenario = JSON.parse(JSON.stringify(data));
  state.scenario.levers = state.scenario.levers || [];
  state.off = new Set();
  const years = state.scenario.years || {};
  $('years-start').value = years.start !== undefined ? years.start : 2023;
  $('years-end').value = years.end !== undefined ? years.end : 2027;
  $('seed').value = state.scenario.seed !== undefined ? state.scenario.seed : 1;
  renderLevers();
  renderParams();
  changed();
}

// The scenario as posted: levers switched off left out; the map from posted lever index to the control's index.
function request() {
  const s = JSON.parse(JSON.stringify(state.scenario));
  const index = [];
  s.levers = s.levers.filter((_, i) => !state.off.has(i) && index.push(i));
  s.years = {start: readControl($('years-start')), end: readControl($('years-end'))};
  s.params = {...(s.params || {})};
  for (const input of document.querySelectorAll('[data-param]')) {
    if (input.value.trim() !== '') s.params[input.dataset.param] = readControl(input); else delete s.params[input.dataset.param];
  }
  const seed = $('seed').value.trim();
  const members = $('members').value.trim();
  s.seed = /^\d+$/.test(seed) ? Number(seed) : seed;  // in the saved file too, so run_scenario.py reruns this seed
  const body = {scenario_yaml: JSON.stringify(s, null, 2) + '\n', seed: s.seed, members: /^\d+$/.test(members) ? Number(members) : members};
  return {body, index};
}

function showError(message, index) {
  for (const node of document.querySelectorAll('[data-error-for]')) node.textContent = '';
  for (const node of document.querySelectorAll('.invalid')) node.classList.remove('invalid');
  if (!message) return;
  const parts = message.split(': ');
  let where = parts.length > 2 ? parts[1] : '';
  const lever = /^levers\.(\d+)(.*)$/.exec(where);
  if (lever) where = `lever.${index[Number(lever[1])]}${lever[2]}`;
  const input = document.querySelector(`[data-path="${CSS.escape(where)}"]`);
  if (input) input.classList.add('invalid');
  const targets = [...document.querySelectorAll('[data-error-for]')].filter((n) => n.dataset.errorFor && (where === n.dataset.errorFor || where.startsWith(n.dataset.errorFor + '.')));
  const target = targets.sort((a, b) => b.dataset.errorFor.length - a.dataset.errorFor.length)[0] || $('error');
  target.textContent = `error: ${message}`;
}

function changed() {
  state.valid = false;
  $('run').disabled = true;
  $('status').textContent = t('checking');
  clearTimeout(state.timer);
  state.timer = setTimeout(check, 250);
}

async function check() {
  const {body, index} = request();
  const asked = ++state.checks;
  const {status, data} = await api('/api/check', body);
  if (asked !== state.checks) return;  // a later change is being checked
  showError(status === 200 ? '' : data.error, index);
  state.valid = status === 200;
  $('run').disabled = !state.valid;
  $('status').textContent = state.valid ? t('ready') : '';
}

async function run() {
  if (!state.valid) return;
  const {body, index} = request();
  $('run').disabled = true;
  const {status, data} = await api('/api/runs', body);
  if (status !== 202) { showError(data.error, index); $('run').disabled = false; return; }
  state.run = data.id;
  poll(data.id);
}

async function poll(id) {
  const {data} = await api(`/api/runs/${id}`);
  if (id !== state.run) return;
  $('progress').value = data.progress;
  $('status').textContent = `${t(data.status === 'done' && data.cached ? 'cached' : data.status)} ${data.message || ''}`;
  if (data.status === 'done') { shown(data); $('run').disabled = !state.valid; return; }
  if (data.status === 'failed' || data.status === 'cancelled') { $('run').disabled = !state.valid; return; }
  setTimeout(() => poll(id), 400);
}

const yi = (cny) => (cny / 1e8).toLocaleString('en', {maximumFractionDigits: 1});
const amount = (metric, v) => v === null ? '–' : metric.endsWith('_cny') ? yi(v) : v.toLocaleString('en', {maximumFractionDigits: 1});
// Differences and spend keep three significant digits: on a small city they are fractions of a 亿.
const small = (metric, v) => (metric.endsWith('_cny') ? v / 1e8 : v).toLocaleString('en', {maximumSignificantDigits: 3});
const signed = (metric, v) => v === null ? '–' : (v > 0 ? '+' : '') + small(metric, v);

function shown(data) {
  state.result = data;
  const f = data.figures;
  $('progress').value = 1;
  $('save').href = `/api/runs/${data.id}/scenario.yaml`;
  $('export').href = `/api/runs/${data.id}/export.zip`;
  $('save').classList.remove('disabled');
  $('export').classList.remove('disabled');
  $('gauges').replaceChildren(...f.targets.map((g) => el('div', {className: 'gauge', 'data-metric': g.metric}, [
    el('div', {text: `${t(g.metric)} ${amount(g.metric, g.value)} / ${amount(g.metric, g.target)}`}),
    el('progress', {max: g.target, value: Math.min(g.value, g.target)})])));
  const head = el('tr', {}, [t('metric'), t('scen'), t('base'), t('diff')].map((x) => el('th', {text: x})));
  if (f.members > 1) head.append(el('th', {text: t('interval')}));
  const rows = f.headline.map((h) => {
    const row = el('tr', {'data-metric': h.metric}, [el('td', {text: t(h.metric)}), el('td', {text: amount(h.metric, h.scenario)}),
      el('td', {text: amount(h.metric, h.baseline)}), el('td', {className: h.difference > 0 ? 'up diff' : h.difference < 0 ? 'down diff' : 'diff', text: signed(h.metric, h.difference)})]);
    if (f.members > 1) row.append(el('td', {text: `[${signed(h.metric, h.ci90_low)}, ${signed(h.metric, h.ci90_high)}]`}));
    return row;
  });
  $('headline').replaceChildren(head, ...rows);
  $('spend').replaceChildren(...f.spend.map((s) => el('tr', {}, [el('td', {text: s.lever}), el('td', {text: small('spend_cny', s.spend_cny)})])));
  const r = f.revenue_per_yuan;
  $('per-yuan').textContent = r ? `${t('perYuan')}: ${r.value.toFixed(2)}` + (f.members > 1 ? ` [${r.ci90_low.toFixed(2)}, ${r.ci90_high.toFixed(2)}]` : '') : t('noSpend');
  showMap();
}

function showMap() {
  for (const b of document.querySelectorAll('[data-view]')) b.classList.toggle('on', b.dataset.view === state.view);
  if (state.result) $('map').onload = collapseMapSide;
  if (state.result) $('map').src = `/api/runs/${state.result.id}/map/${state.view}.html#lang=${state.lang === 'zh' ? 'zh' : 'en'}`;
}

function translate() {
  document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  $('lang').textContent = t('lang');
  if (state.result) shown(state.result);
}

async function start() {
  const [schema, offered] = await Promise.all([api('/api/schema'), api('/api/scenarios')]);
  state.schema = schema.data;
  state.scenarios = {...offered.data.scenarios, [offered.data.start.name]: offered.data.start};
  for (const name of Object.keys(state.scenarios)) $('picker').append(el('option', {value: name, text: name}));
  $('picker').value = offered.data.start.name;
  $('picker').addEventListener('change', () => loadScenario(state.scenarios[$('picker').value]));
  for (const kind of Object.keys(state.schema.scenario.properties.levers.items.discriminator.mapping)) $('add-kind').append(el('option', {value: kind, text: kind}));
  $('add').addEventListener('click', () => { state.scenario.levers.push({kind: $('add-kind').value}); renderLevers(); changed(); });
  for (const id of ['years-start', 'years-end', 'seed', 'members']) $(id).addEventListener('change', changed);
  $('run').addEventListener('click', run);
  $('lang').addEventListener('click', () => { state.lang = state.lang === 'en' ? 'zh' : 'en'; translate(); renderLevers(); });
  $('present').addEventListener('click', () => document.body.classList.toggle('present'));
  for (const b of document.querySelectorAll('[data-view]')) b.addEventListener('click', () => { state.view = b.dataset.view; showMap(); });
  $('years-start').dataset.kind = $('years-end').dataset.kind = 'integer';
  loadScenario(state.scenarios[$('picker').value]);
  translate();
}

document.addEventListener('DOMContentLoaded', start);

/** In a map narrower than a projector's, fold the map's own layers panel (#layers-panel), which would cover half of it (its − button opens it again). */
function collapseMapSide() {
  const frame = $('map');
  const side = frame.contentDocument && frame.contentDocument.getElementById('layers-panel');
  if (side && frame.clientWidth < 1100 && !side.classList.contains('collapsed')) side.querySelector('.collapse').click();
}
