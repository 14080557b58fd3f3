/* Vision Valley Twin map page.
 *
 * Reads the payload embedded as JSON (#vv-data), draws it with the deck.gl
 * bundle that pydeck ships (the global `deck`), and drives the year slider,
 * play/pause, layer toggles, legends, key figures and the 中文/English switch.
 * Text from data only ever reaches the page through textContent, deck's text
 * tooltips (innerText) or canvas labels: never as HTML.
 */
(function () {
  'use strict';

  const DATA = JSON.parse(document.getElementById('vv-data').textContent);
  const SINGLE = DATA.mode === 'single';
  const PROBABILITY = DATA.mode === 'probability';
  const FONT = '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif';

  /* Every fixed label, as [中文, English]. */
  const UI = {
    app: ['中国视谷数字孪生', 'China Vision Valley twin'],
    vs: [' 对比 ', ' vs '],
    seed: ['随机种子', 'seed'],
    year: ['年份', 'Year'],
    play: ['▶ 播放', '▶ Play'],
    pause: ['❚❚ 暂停', '❚❚ Pause'],
    lang: ['English', '中文'],
    present: ['演示模式', 'Present'],
    leavePresent: ['退出演示', 'Leave presentation'],
    collapse: ['收起', 'Collapse'],
    expand: ['展开', 'Expand'],
    flatNote: ['西湖、湘湖画在网格之上，湖前的柱体画成平面', 'West Lake and Xianghu are drawn over the cells, and columns in front of them flat'],
    figures: ['关键指标', 'Key figures'],
    target: ['2027 目标', '2027 target'],
    difference: ['差值', 'Difference'],
    topFirms: ['营收前十企业', 'Ten largest firms'],
    layers: ['图层', 'Layers'],
    modelFirm: ['模拟企业', 'Model firm'],
    modelFirmIn: ['{d}模拟企业', 'Model firm, {d}'],
    modelFirmNote: ['模拟企业：模型按统计合成的企业，不是真实公司', 'Model firm: synthesized by the model from the statistics, not a real company'],
    meanOf: ['{n} 组同种子配对的均值；差值附 90% 区间', 'means of {n} paired seeds; difference with its 90% interval'],
    oneSeed: ['单一种子（{s}）：无区间', 'one seed ({s}): no interval'],
    inherited: ['标题沿用上级情景', 'title inherited from the parent scenario'],
    credits: ['数据来源', 'Sources'],
    water: ['水域（湖泊、江河）', 'Water (lakes, rivers)'],
    urban: ['建成区', 'Built-up area'],
    metro: ['地铁线路（线路本色）', 'Metro lines (in their colours)'],
    floorNote: ['每 km² 年营收不足 {v} 的网格不显示', 'cells under {v} a year per km² are not drawn'],
    andMore: ['……另有 {n} 家', '… and {n} more'],
    track: ['赛道', 'Track'],
    revenue: ['营收', 'Revenue'],
    employees: ['员工', 'Employees'],
    cell: ['{size} 网格', '{size} cell'],
    revenueDensity: ['营收密度', 'Revenue density'],
    talentDensity: ['人才密度', 'Talent density'],
    centres: ['个算力中心', 'compute centre(s)'],
    floor: ['建筑面积', 'Floor area'],
    zone: ['所在区域', 'Zone'],
    approximate: ['（示意边界）', ' (approximate boundary)'],
    perKm2: ['/km²', '/km²'],
    people: [' 人', ' people'],
    revenueNote: ['每 km² 年营收；柱高 ∝ √营收', 'yearly revenue per km²; column height ∝ √revenue'],
    differenceNote: ['每 km² 年营收之差', 'difference in yearly revenue per km²'],
    talentNote: ['每 km² 居住人才数', 'talent living per km²'],
    computeNote: ['圆面积 ∝ 算力', 'circle area ∝ compute'],
    parksNote: ['方框面积 ∝ 建筑面积', 'square area ∝ floor area'],
    firmsNote: ['圆点大小 ∝ √营收；颜色为该点最大企业的赛道', 'dot size ∝ √revenue; colour: track of the largest firm there'],
    diffNote: ['+ 表示 {a} 更高，− 表示更低', '+ higher in {a}, − lower'],
    'layer.districts': ['行政区', 'Districts'],
    'layer.basemap': ['底图：水域·建成区·地铁', 'Base map: water, built-up, metro'],
    'layer.zones': ['一园·双核·四区·全域', 'Plan zones'],
    'layer.places': ['地标与平台', 'Places'],
    'layer.revenue': ['企业营收密度', 'Firm revenue density'],
    'layer.talent': ['人才密度', 'Talent density'],
    'layer.firms': ['龙头企业', 'Largest firms'],
    'layer.compute': ['算力中心', 'Compute centres'],
    'layer.parks': ['产业园区', 'Parks'],
    'layer.difference': ['营收密度差值', 'Revenue density difference'],
    'layer.probability': ['营收增长概率', 'Probability of revenue growth'],
    probabilityNote: ['集合成员中该格营收高于基准年的比例（1 km 格内平均），0–100 %', 'share of members whose revenue in the cell exceeds the base year (mean over the 1 km cell), 0–100 %'],
    probability: ['营收增长概率', 'Probability of revenue growth'],
    ensemble: ['集合模拟', 'Ensemble'],
    members: ['成员数 N', 'Members N'],
    ofMembers: ['{n} 个成员', '{n} members'],
    chances: ['达成 2027 目标的概率', 'Probability of meeting the 2027 targets'],
    judgedIn: ['按 {y} 年数值判断', 'judged on the {y} figures'],
    allTargets: ['三项目标全部达成', 'All three targets'],
    ci90: ['90% 区间', '90% interval'],
    scaled: ['缩小规模运行（scale = {s}），总量不可与绝对目标直接比较', 'scaled-down run (scale = {s}): totals are not comparable with the absolute targets'],
    estimated: ['缩小规模运行（scale = {s}）：按全市估算判断（龙头企业 + 其他企业 / {s}）', 'scaled-down run (scale = {s}): chances judge full-city estimates (anchors + other firms / {s})'],
    'fig.total_scale_cny': ['视觉智能总规模', 'Total scale'],
    'fig.revenue_cny': ['核心产业营收', 'Core revenue'],
    'fig.leaders_100bn': ['千亿级企业', 'Firms ≥ CNY 100 bn'],
    'fig.firms': ['企业数', 'Firms'],
    'fig.talent': ['人才', 'Talent'],
    'fig.compute_pflops': ['算力 (PFLOPS)', 'Compute (PFLOPS)'],
    'kind.platform': ['平台', 'platform'],
    'kind.firm': ['企业', 'firm'],
    'kind.university': ['高校', 'university'],
    'kind.lab': ['实验室', 'lab'],
    'kind.landmark': ['地标', 'landmark'],
  };
  const FIGURES = ['total_scale_cny', 'revenue_cny', 'leaders_100bn', 'firms', 'talent', 'compute_pflops'];
  const MONEY = new Set(['total_scale_cny', 'revenue_cny']);
  const LAYERS = SINGLE
    ? ['zones', 'revenue', 'talent', 'firms', 'compute', 'parks', 'places', 'basemap', 'districts']
    : ['zones', PROBABILITY ? 'probability' : 'difference', 'places', 'basemap', 'districts'];

  /* Colour scales (ColorBrewer YlOrRd, BuPu, RdBu, YlGnBu; Tableau 10 for the tracks). */
  const REVENUE_COLOURS = [[255, 255, 178], [254, 217, 118], [254, 178, 76], [253, 141, 60], [240, 59, 32], [189, 0, 38]];
  const TALENT_COLOURS = [[237, 248, 251], [191, 211, 230], [158, 188, 218], [140, 150, 198], [136, 86, 167], [129, 15, 124]];
  const PROBABILITY_COLOURS = [[255, 255, 204], [199, 233, 180], [127, 205, 187], [65, 182, 196], [44, 127, 184], [37, 52, 148]];
  const DIVERGING = [[33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240], [230, 230, 230], [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43]];
  const TRACK_COLOURS = [[78, 121, 167], [242, 142, 43], [225, 87, 89], [118, 183, 178], [89, 161, 79], [237, 201, 72], [176, 122, 161], [255, 157, 167], [156, 117, 95]];
  const ZONE_STYLE = {
    window: {fill: [230, 85, 13, 90], line: [230, 85, 13, 255], width: 3},
    core: {fill: [117, 107, 177, 22], line: [117, 107, 177, 255], width: 2},
    four: {fill: [49, 163, 84, 16], line: [49, 163, 84, 255], width: 2},
    wide: {fill: [160, 160, 160, 0], line: [120, 120, 120, 200], width: 1},
  };
  const TOOLTIP_STYLE = {backgroundColor: 'rgba(255, 255, 255, 0.96)', color: '#222', fontSize: '13px', fontFamily: FONT,
    padding: '6px 8px', borderRadius: '4px', boxShadow: '0 1px 4px rgba(0, 0, 0, 0.3)'};
  /* Mostly ambient light, so column tops keep the legend's colours. */
  const BRIGHT = {ambient: 0.75, diffuse: 0.35, shininess: 16, specularColor: [30, 30, 30]};
  const PLACE_NAMES_ZOOM = 10.5;
  const LAKE_LABEL_GAP = 14; // pixels between a lake and its name
  const DISTRICT_NAMES_MAX_ZOOM = 12; // zoomed in further, district names only crowd the places' names
  const TALLEST_COLUMN_M = 25000;
  const TALLEST_COLUMN_SHARE = 0.2; // the tallest column never stands higher than this share of the window
  const EARTH_CIRCUMFERENCE_M = 40075017;
  const WATER_COLOUR = [168, 204, 232];
  const URBAN_COLOUR = [214, 208, 198];
  const OTHER_ZONE = {fill: [120, 120, 120, 30], line: [90, 90, 90, 255], width: 1};
  const COMPUTE_COLOUR = [0, 150, 200];
  const PARK_COLOUR = [50, 50, 50];
  const PARK_SIDE = 5; // metres of square side per √m² of floor area: area ∝ floor area
  const METRES_PER_DEGREE = 111320;

  const HASH = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  const SLIDE = HASH.has('slide'); // a slide for a PNG: presentation mode without any control
  const HIDDEN_WHEN_PRESENTING = new Set(['talent', 'compute', 'parks', 'firms']); // a legend that fits a projector; the side panel lists the largest firms
  const state = {
    year: DATA.years.length - 1,
    lang: hashLang() || (DATA.lang === 'en' ? 'en' : 'zh'),
    present: SLIDE || HASH.has('present'),
    zoom: 10, // the view's zoom, in quarter steps: column heights and which labels show follow it
    timer: null,
    near: false, // zoomed in far enough for the places' names not to pile up
    visible: {},
  };
  LAYERS.forEach(k => { state.visible[k] = !(state.present ? HIDDEN_WHEN_PRESENTING : new Set(['talent'])).has(k); });

  /* `#lang=en` or `#lang=zh` in the page's address picks the language; null when it says neither.
     `#present` opens presentation mode (e.g. `#lang=en&present`). */
  function hashLang() {
    const found = /(?:^|[#&])lang=(zh|en)(?:&|$)/.exec(window.location.hash);
    return found ? found[1] : null;
  }

  const $ = id => document.getElementById(id);
  const t = key => UI[key][state.lang === 'zh' ? 0 : 1];
  const pick = (zh, en) => (state.lang === 'zh' ? zh || en : en || zh);
  const locale = () => (state.lang === 'zh' ? 'zh-CN' : 'en-US');
  const POS = DATA.cells.lon.map((lon, i) => [lon, DATA.cells.lat[i]]);
  const CELL_M = DATA.cells.size_m;

  /* ---- numbers ---------------------------------------------------------- */

  function num(v, digits) {
    return Number(v).toLocaleString(locale(), {maximumSignificantDigits: digits || 3});
  }

  function count(v) {
    return Math.round(v).toLocaleString(locale());
  }

  /* CNY in 亿元/万元 for Chinese readers, in bn/m/k for English ones. */
  function money(cny, digits) {
    const a = Math.abs(cny);
    if (state.lang === 'zh') {
      if (a >= 1e8) return num(cny / 1e8, digits) + ' 亿元';
      if (a >= 1e4) return num(cny / 1e4, digits) + ' 万元';
      return num(cny, digits) + ' 元';
    }
    const cur = (cny < 0 ? '-' : '') + 'CNY ';
    if (a >= 1e9) return cur + num(a / 1e9, digits) + ' bn';
    if (a >= 1e6) return cur + num(a / 1e6, digits) + ' m';
    if (a >= 1e3) return cur + num(a / 1e3, digits) + ' k';
    return cur + num(a, digits);
  }

  /* A probability sent in per mille, as a percentage. */
  function percent(permille) {
    return num(permille / 10) + ' %';
  }

  function figure(key, v) {
    if (v === null || v === undefined) return '–';
    return MONEY.has(key) ? money(v, 4) : count(v);
  }

  /* ---- colour classes --------------------------------------------------- */

  function classOf(v, breaks) {
    let k = 0;
    while (k < breaks.length && v >= breaks[k]) k++;
    return k;
  }

  function sequential(palette, breaks, v) {
    return palette[palette.length - breaks.length - 1 + classOf(v, breaks)];
  }

  function diverging(breaks, v) {
    const k = classOf(Math.abs(v), breaks);
    return DIVERGING[4 + (v < 0 ? -k : k)];
  }

  /* ---- data views ------------------------------------------------------- */

  const nonzeroCache = {};
  /* Cells with a non-zero value in the chosen year: geometry is shared, only the index list changes. */
  function nonzero(key) {
    const id = key + state.year;
    if (!nonzeroCache[id]) {
      const values = DATA[key].values[state.year];
      const cells = [];
      for (let i = 0; i < values.length; i++) if (values[i] !== 0) cells.push(i);
      nonzeroCache[id] = cells;
    }
    return nonzeroCache[id];
  }

  const sitesCache = {};
  /* The year's largest firms grouped by position (several share a cell centre), largest first in each:
     one dot per site, so the tooltip lists them all. Smallest sites first, so the largest draw on top. */
  function firmSites() {
    if (!sitesCache[state.year]) {
      const bySite = new Map();
      DATA.firms[state.year].forEach(r => {
        const key = r[0] + ',' + r[1];
        bySite.set(key, (bySite.get(key) || []).concat([r]));
      });
      sitesCache[state.year] = Array.from(bySite.values()).sort((a, b) => siteRevenue(a) - siteRevenue(b));
    }
    return sitesCache[state.year];
  }

  function siteRevenue(site) {
    return site.reduce((sum, r) => sum + r[5], 0);
  }

  function maxOver(values) {
    return values.reduce((m, year) => year.reduce((a, v) => Math.max(a, Math.abs(v)), m), 1);
  }

  /* Metres of column per √(万元/km²): the densest cell of any year stands TALLEST_COLUMN_M high. */
  const REVENUE_HEIGHT = SINGLE ? TALLEST_COLUMN_M / Math.sqrt(maxOver(DATA.revenue.values)) : 0;

  /* Column heights follow the view: the tallest column is at most TALLEST_COLUMN_SHARE of the window high on
     screen, so zooming in never raises walls, and never above TALLEST_COLUMN_M. */
  function elevationScale() {
    return Math.min(1, TALLEST_COLUMN_SHARE * window.innerHeight * metresPerPixel() / TALLEST_COLUMN_M);
  }

  function metresPerPixel() {
    return EARTH_CIRCUMFERENCE_M * Math.cos(view.latitude * Math.PI / 180) / (512 * Math.pow(2, state.zoom));
  }

  function zoneName(id) {
    const zone = DATA.zones.find(f => f.properties.zone === id);
    return zone ? pick(zone.properties.name_zh, zone.properties.name_en) : id;
  }

  /* ---- layers ----------------------------------------------------------- */

  /* Labels on a white, slightly transparent box: legible over any colour, in both scripts (no SDF outline,
     whose halo blurs CJK strokes). The bundled deck.gl has no CollisionFilterExtension, so crowding is
     handled by zoom instead: place names only near, district names only far. */
  function labels(id, data, getText, size, colour, getPosition) {
    return new deck.TextLayer({
      id: id + '-labels', data, visible: labelVisible(id),
      getPosition: getPosition || (d => d.pos), getText, getSize: size, getColor: colour,
      getTextAnchor: d => (d.shape ? 'end' : 'middle'), getPixelOffset: d => (d.shape ? [-LAKE_LABEL_GAP, 0] : [0, 0]),
      characterSet: 'auto', fontFamily: FONT, fontWeight: 600,
      background: true, getBackgroundColor: [255, 255, 255, 215], backgroundPadding: [4, 2, 4, 2],
      parameters: {depthCompare: 'always'},
      updateTriggers: {getText: state.lang},
    });
  }

  function baseLayers() {
    const zoneStyle = f => ZONE_STYLE[f.properties.zone] || OTHER_ZONE;
    const base = state.visible.basemap;
    return [
      new deck.GeoJsonLayer({
        id: 'districts', data: DATA.districts, visible: state.visible.districts,
        getFillColor: [248, 247, 242], getLineColor: [150, 150, 150], lineWidthUnits: 'pixels', getLineWidth: 1,
      }),
      new deck.GeoJsonLayer({id: 'urban', data: DATA.basemap.urban, visible: base, stroked: false, getFillColor: URBAN_COLOUR}),
      new deck.GeoJsonLayer({
        id: 'water', data: DATA.basemap.water, visible: base, pickable: true,
        getFillColor: WATER_COLOUR, getLineColor: [120, 165, 205], lineWidthUnits: 'pixels', getLineWidth: 0.5,
      }),
      new deck.GeoJsonLayer({
        id: 'zones', data: DATA.zones, visible: state.visible.zones,
        getFillColor: f => zoneStyle(f).fill, getLineColor: f => zoneStyle(f).line,
        lineWidthUnits: 'pixels', getLineWidth: f => zoneStyle(f).width,
      }),
      new deck.GeoJsonLayer({
        id: 'metro', data: DATA.basemap.metro, visible: base, pickable: true,
        getLineColor: f => hexColour(f.properties.colour).concat(190), lineWidthUnits: 'pixels', getLineWidth: 2,
      }),
    ];
  }

  /* '#RRGGBB' as [r, g, b]; grey when a user's metro file has no usable colour. */
  function hexColour(hex) {
    const found = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || '');
    return found ? found.slice(1).map(h => parseInt(h, 16)) : [120, 120, 120];
  }

  /* The 一园 outline again, drawn over the columns so the window park is never hidden. */
  function windowOutline() {
    return new deck.GeoJsonLayer({
      id: 'zones-window', data: DATA.zones.filter(f => f.properties.zone === 'window'), visible: state.visible.zones,
      filled: false, getLineColor: ZONE_STYLE.window.line, lineWidthUnits: 'pixels', getLineWidth: 3,
      parameters: {depthCompare: 'always'},
    });
  }

  function labelLayers() {
    const feature = f => ({pos: f.properties.label, p: f.properties});
    const zoneColour = d => (ZONE_STYLE[d.p.zone] || OTHER_ZONE).line;
    const featureName = d => pick(d.p.name_zh, d.p.name_en);
    const placeName = r => pick(r[2], r[3]);
    const placePos = r => [r[0], r[1]];
    const landmarkName = d => pick(d.name[0], d.name[1]);
    const size = state.present ? {landmark: 17, district: 16, zone: 16, place: 14} : {landmark: 14, district: 13, zone: 16, place: 13};
    // Most important first: a label that would overlap one already placed, or a panel, is left out (the bundled
    // deck.gl has no CollisionFilterExtension). Landmarks a visitor knows (West Lake, the Qiantang), district
    // names (only when not zoomed in), the window park, the other zones, then places.
    const free = declutter();
    const landmarks = free('landmarks', DATA.landmarks, d => d.pos, landmarkName, size.landmark);
    const districts = free('districts', state.zoom < DISTRICT_NAMES_MAX_ZOOM ? DATA.districts.map(feature) : [], d => d.pos, featureName, size.district);
    const byWindow = d => (d.p.zone === 'window' ? 0 : 1);
    const zones = free('zones', DATA.zones.map(feature).sort((a, b) => byWindow(a) - byWindow(b)), d => d.pos, featureName, size.zone);
    const places = free('places', state.near ? DATA.places : [], placePos, placeName, size.place);
    return [
      labels('districts', districts, featureName, size.district, [80, 80, 80]),
      labels('places', places, placeName, size.place, [30, 30, 30], placePos),
      labels('zones', zones, featureName, size.zone, zoneColour),
      labels('landmarks', landmarks, landmarkName, size.landmark, [20, 70, 130]),
    ];
  }

  /* A filter that keeps the labels whose on-screen boxes lie in the window, off the panels and off every
     label kept before, for the current view. */
  function declutter() {
    const viewport = currentViewport();
    const taken = panelBoxes();
    return (id, items, position, text, size) => (labelVisible(id) ? items : []).filter(d => {
      const half = labelWidth(text(d), size) / 2 + 4;
      const [x, y] = labelCentre(viewport.project(position(d)), d, half);
      const box = [x - half, y - size / 2 - 3, x + half, y + size / 2 + 3];
      if (box[0] < 0 || box[1] < 0 || box[2] > window.innerWidth || box[3] > window.innerHeight) return false;
      if (taken.some(b => overlaps(box, b))) return false;
      taken.push(box);
      return true;
    });
  }

  /* A lake's name stands to the left of it, so the label never covers the lake it names. */
  function labelCentre([x, y], d, half) {
    return d.shape ? [x - LAKE_LABEL_GAP - half + 4, y] : [x, y];
  }

  function labelVisible(id) {
    return id === 'landmarks' ? state.visible.places : state.visible[id];
  }

  function currentViewport() {
    return new deck.WebMercatorViewport(Object.assign({width: window.innerWidth, height: window.innerHeight}, current));
  }

  const overlaps = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

  /* The panels' boxes on screen, [left, top, right, bottom]. */
  function panelBoxes() {
    return Array.from(document.querySelectorAll('.panel')).map(p => p.getBoundingClientRect())
      .filter(r => r.width > 0 && r.height > 0).map(r => [r.left, r.top, r.right, r.bottom]);
  }

  /* Approximate width in pixels: a CJK character is about one em, a Latin one about 0.6 em. */
  function labelWidth(text, size) {
    let em = 0;
    for (const ch of text || '') em += ch.codePointAt(0) >= 0x2e80 ? 1 : 0.6;
    return em * size;
  }

  function placeLayer() {
    return new deck.ScatterplotLayer({
      id: 'places', data: DATA.places, visible: state.visible.places, pickable: true,
      getPosition: r => [r[0], r[1]], getRadius: 3, radiusUnits: 'pixels',
      getFillColor: [60, 60, 60], stroked: true, getLineColor: [255, 255, 255], lineWidthUnits: 'pixels', getLineWidth: 1,
    });
  }

  function densityLayers() {
    const y = state.year;
    const revenue = DATA.revenue.values[y];
    const columns = nonzero('revenue').filter(i => revenue[i] >= DATA.revenue.floor);
    const height = i => Math.sqrt(revenue[i]) * REVENUE_HEIGHT;
    const flat = columnsOverLakes(columns, height);
    state.flatColumns = flat.size;
    return [
      flatCells('talent', v => sequential(TALENT_COLOURS, DATA.talent.breaks, v), 200),
      new deck.ColumnLayer({
        id: 'revenue', data: columns, visible: state.visible.revenue, pickable: true,
        diskResolution: 4, angle: 45, radius: 0.8 * CELL_M / Math.SQRT2, extruded: true, material: BRIGHT,
        elevationScale: elevationScale(),
        getPosition: i => POS[i], getElevation: i => (flat.has(i) ? 0 : height(i)),
        getFillColor: i => sequential(REVENUE_COLOURS, DATA.revenue.breaks, revenue[i]),
        updateTriggers: {getFillColor: y, getElevation: [y, Array.from(flat).join()]},
      }),
    ];
  }

  function pointLayers() {
    const y = state.year;
    const onTop = {depthCompare: 'always'};
    return [
      new deck.PolygonLayer({
        id: 'parks', data: DATA.parks[y], visible: state.visible.parks, pickable: true, parameters: onTop,
        getPolygon: r => square(r[0], r[1], PARK_SIDE * Math.sqrt(r[2])),
        getFillColor: PARK_COLOUR.concat(70), getLineColor: PARK_COLOUR, lineWidthUnits: 'pixels', getLineWidth: 2,
      }),
      new deck.ScatterplotLayer({
        id: 'compute', data: DATA.compute[y], visible: state.visible.compute, pickable: true, parameters: onTop,
        getPosition: r => [r[0], r[1]], getRadius: r => 40 * Math.sqrt(r[2]), radiusMinPixels: 4,
        getFillColor: COMPUTE_COLOUR.concat(90), stroked: true, getLineColor: COMPUTE_COLOUR, lineWidthUnits: 'pixels', getLineWidth: 2,
      }),
      new deck.ScatterplotLayer({
        id: 'firms', data: firmSites(), visible: state.visible.firms, pickable: true, parameters: onTop,
        getPosition: site => [site[0][0], site[0][1]], getRadius: site => Math.sqrt(siteRevenue(site)),
        radiusUnits: 'pixels', radiusScale: 0.02, radiusMinPixels: 2.5, radiusMaxPixels: 16,
        getFillColor: site => TRACK_COLOURS[site[0][4]] || [90, 90, 90], stroked: true, getLineColor: [255, 255, 255], lineWidthUnits: 'pixels', getLineWidth: 1,
      }),
    ];
  }

  /* The columns whose body, as drawn in the current view, would stand over a landmark lake (West Lake, Xianghu):
     they are drawn flat (their colour still gives their class, the legend says so), so a tilted view never
     hides the lake. Columns behind a lake rise away from it on screen and keep their height. */
  function columnsOverLakes(columns, height) {
    const viewport = currentViewport();
    const scale = elevationScale();
    const half = 0.5 * CELL_M / metresPerPixel();
    const lakes = DATA.landmarks.filter(lm => lm.clear).map(lm => {
      const [w, s, e, n] = lm.clear;
      const corners = [[w, s], [w, n], [e, s], [e, n]].map(c => viewport.project(c));
      const xs = corners.map(c => c[0]);
      const ys = corners.map(c => c[1]);
      return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
    });
    const flat = new Set();
    if (!lakes.length || !current.pitch) return flat;
    columns.forEach(i => {
      const base = viewport.project(POS[i]);
      const top = viewport.project([POS[i][0], POS[i][1], height(i) * scale]);
      const body = [Math.min(base[0], top[0]) - half, Math.min(base[1], top[1]) - half,
        Math.max(base[0], top[0]) + half, Math.max(base[1], top[1])];
      if (lakes.some(lake => overlaps(body, lake) && base[1] > lake[3])) flat.add(i);
    });
    return flat;
  }

  /* A square of side `side` metres centred on a point: parks are drawn as squares, unlike every circle. */
  function square(lon, lat, side) {
    const dLat = side / 2 / METRES_PER_DEGREE;
    const dLon = dLat / Math.cos(lat * Math.PI / 180);
    return [[lon - dLon, lat - dLat], [lon + dLon, lat - dLat], [lon + dLon, lat + dLat], [lon - dLon, lat + dLat]];
  }

  /* The chosen year's non-zero cells of DATA[key], as flat squares coloured by `colour(value)`. */
  function flatCells(key, colour, alpha) {
    const values = DATA[key].values[state.year];
    return new deck.ColumnLayer({
      id: key, data: nonzero(key), visible: state.visible[key], pickable: true,
      diskResolution: 4, angle: 45, radius: CELL_M / Math.SQRT2, extruded: false,
      getPosition: i => POS[i], getFillColor: i => colour(values[i]).concat(alpha),
      updateTriggers: {getFillColor: state.year},
    });
  }

  function middleLayers() {
    if (SINGLE) return densityLayers().concat([placeLayer()], pointLayers());
    if (PROBABILITY) return [flatCells('probability', v => sequential(PROBABILITY_COLOURS, DATA.probability.breaks, v), 210), placeLayer()];
    return [flatCells('difference', v => diverging(DATA.difference.breaks, v), 220), placeLayer()];
  }

  function layers() {
    const middle = middleLayers();
    return baseLayers().concat(middle, [landmarkLakes(), windowOutline()], labelLayers());
  }

  /* West Lake and Xianghu again, over the 1 km cells of their shores (whose firms stand on land, not on the
     water): a visitor finds them on any map; columns in front of them are drawn flat (columnsOverLakes). */
  function landmarkLakes() {
    return new deck.GeoJsonLayer({
      id: 'lakes', data: DATA.landmarks.filter(lm => lm.shape).map(lm => ({type: 'Feature', geometry: lm.shape, properties: {}})),
      visible: state.visible.basemap, getFillColor: WATER_COLOUR, getLineColor: [120, 165, 205], lineWidthUnits: 'pixels',
      getLineWidth: 1, parameters: {depthCompare: 'always'},
    });
  }

  /* ---- tooltips (plain text only) ------------------------------------- */

  function tooltip(info) {
    const o = info.object;
    if (o === undefined || o === null) return null;
    const y = state.year;
    const lines = {
      firms: () => firmLines(o),
      revenue: () => cellLines(o), talent: () => cellLines(o),
      difference: () => [cellName(), runTitle(0) + ' − ' + runTitle(1) + ': ' + money(DATA.difference.values[y][o] * 1e4) + t('perKm2')],
      probability: () => [cellName(), t('probability') + ': ' + percent(DATA.probability.values[y][o])],
      compute: () => [o[3] + ' ' + t('centres'), num(o[2], 4) + ' PFLOPS'],
      parks: () => [t('layer.parks'), t('floor') + ': ' + count(o[2]) + ' m²', t('zone') + ': ' + zoneName(o[3])],
      places: () => [pick(o[2], o[3]), UI['kind.' + o[4]] ? t('kind.' + o[4]) : o[4]],
      water: () => [pick(o.properties.name_zh, o.properties.name_en)],
      metro: () => [o.properties.name || o.properties.ref],
    }[info.layer.id];
    return lines ? {text: lines().join('\n'), style: TOOLTIP_STYLE} : null;
  }

  const SITE_FIRMS = 5;
  function firmLines(site) {
    const lines = [];
    site.slice(0, SITE_FIRMS).forEach(r => lines.push(firmName(r),
      t('track') + ': ' + trackName(r[4]) + ' · ' + t('revenue') + ': ' + money(r[5] * 1e4) + ' · ' + t('employees') + ': ' + count(r[6])));
    if (site.length > SITE_FIRMS) lines.push(t('andMore').split('{n}').join(String(site.length - SITE_FIRMS)));
    return lines;
  }

  function firmName(r) {
    if (r[2] || r[3]) return pick(r[2], r[3]);
    const district = DATA.districts[r[7]];
    return district ? t('modelFirmIn').split('{d}').join(pick(district.properties.name_zh, district.properties.name_en)) : t('modelFirm');
  }

  function cellName() {
    const size = CELL_M >= 1000 ? num(CELL_M / 1000) + ' km' : num(CELL_M) + ' m';
    return t('cell').split('{size}').join(size);
  }

  function cellLines(i) {
    const y = state.year;
    return [cellName(), t('revenueDensity') + ': ' + money(DATA.revenue.values[y][i] * 1e4) + t('perKm2'),
      t('talentDensity') + ': ' + count(DATA.talent.values[y][i]) + t('people') + t('perKm2')];
  }

  function trackName(i) {
    const track = DATA.tracks[i];
    return track ? pick(track[1], track[2]) : '–';
  }

  function runTitle(k) {
    return pick(DATA.runs[k].zh, DATA.runs[k].en);
  }

  /* ---- DOM helpers ---------------------------------------------------- */

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function swatch(rgb) {
    const node = el('span', undefined, 'swatch');
    node.style.backgroundColor = 'rgb(' + rgb.slice(0, 3).join(',') + ')';
    return node;
  }

  function legendRow(rgb, text) {
    const row = el('div', undefined, 'legend-row');
    row.append(swatch(rgb), el('span', text));
    return row;
  }

  /* ---- panels --------------------------------------------------------- */

  function renderHeader() {
    const title = DATA.runs.length === 1 ? runTitle(0) : runTitle(0) + t('vs') + runTitle(1);
    $('title').textContent = t('app') + ' · ' + title + (PROBABILITY ? ' · ' + t('ensemble') : '');
    document.title = $('title').textContent;
    const span = DATA.years[0] + '–' + DATA.years[DATA.years.length - 1];
    const inherited = DATA.runs.some(r => r.inherited) ? ' · ' + t('inherited') : '';
    $('subtitle').textContent = span + inherited
      + (PROBABILITY ? ' · ' + t('ofMembers').split('{n}').join(count(DATA.ensemble.members)) : '');
    $('year').textContent = t('year') + ' ' + DATA.years[state.year];
    $('year-slider').value = String(state.year);
    $('play').textContent = state.timer ? t('pause') : t('play');
    $('lang').textContent = t('lang');
    $('present').textContent = state.present ? t('leavePresent') : t('present');
    document.querySelectorAll('.panel > .collapse').forEach(button => {
      const collapsed = button.parentElement.classList.contains('collapsed');
      button.textContent = collapsed ? '+' : '−';
      button.title = collapsed ? t('expand') : t('collapse');
    });
    $('figures-title').textContent = PROBABILITY ? t('ensemble') : t('figures') + ' · ' + DATA.years[state.year];
    $('layers-title').textContent = t('layers');
    $('credits').replaceChildren(el('b', t('credits') + ': '), el('span', DATA.credits.join(' · ')));
    document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
  }

  function renderFigures() {
    const box = $('figures');
    box.replaceChildren(SINGLE ? figureList() : PROBABILITY ? ensemblePanel() : figureTable());
  }

  function figureRow(key, label, value) {
    const row = el('div', undefined, 'figure');
    row.dataset.key = key;
    row.append(el('span', label, 'figure-label'), el('span', value, 'figure-value'));
    return row;
  }

  function bar(share, met) {
    const outer = el('div', undefined, 'bar');
    const fill = el('div', undefined, 'bar-fill');
    fill.style.width = Math.max(0, Math.min(100, 100 * share)).toFixed(1) + '%';
    fill.classList.toggle('met', met);
    outer.append(fill);
    return outer;
  }

  /* An ensemble: N, the seed and, when known, the chance of meeting each 2027 target (with its 90% interval). */
  function ensemblePanel() {
    const list = el('div');
    const info = DATA.ensemble;
    list.append(figureRow('members', t('members'), count(info.members)), figureRow('seed', t('seed'), String(info.seed)));
    const chances = DATA.chances;
    if (!chances) return list;
    list.append(el('h3', t('chances')));
    if (chances.year !== 2027) list.append(el('p', t('judgedIn').split('{y}').join(String(chances.year)), 'note'));
    FIGURES.concat(['all']).filter(key => chances.targets[key]).forEach(key => {  // the JSON's keys are sorted
      const c = chances.targets[key];
      const label = key === 'all' ? t('allTargets') : t('fig.' + key) + ' ≥ ' + figure(key, DATA.targets[key]);
      const row = figureRow(key, label, percent(1000 * c.probability));
      row.append(bar(c.probability, false),
        el('span', t('ci90') + ' ' + percent(1000 * c.ci90[0]) + ' – ' + percent(1000 * c.ci90[1]), 'figure-target'));
      list.append(row);
    });
    if (info.scale < 1) list.append(el('p', t('estimated').split('{s}').join(String(info.scale)), 'note'));
    return list;
  }

  /* One run: each figure, with a bar towards its 2027 target where there is one; a scaled-down run's figures are
     its share of the city, so it draws no bar towards an absolute target and says so. */
  function figureList() {
    const list = el('div');
    const figures = DATA.figures[0][state.year];
    FIGURES.forEach(key => {
      const row = figureRow(key, t('fig.' + key), figure(key, figures[key]));
      const target = DATA.scale < 1 ? undefined : DATA.targets[key];
      if (target) {
        const share = figures[key] / target;
        row.append(bar(share, share >= 1), el('span', t('target') + ' ' + figure(key, target) + ' · ' + Math.round(100 * share) + '%', 'figure-target'));
      }
      list.append(row);
    });
    if (DATA.scale < 1) list.append(el('p', t('scaled').split('{s}').join(String(DATA.scale)), 'note'));
    return list;
  }

  /* Two runs: the figures side by side (means over the paired seeds) and the mean difference with its 90 % interval;
     a note says over how many seeds, or that it is one seed. All from comparison.csv's function. */
  function figureTable() {
    const box = el('div');
    const paired = DATA.paired;
    const single = paired.pairs < 2;
    box.append(el('p', single ? t('oneSeed').split('{s}').join(String(paired.seeds[0]))
      : t('meanOf').split('{n}').join(String(paired.pairs)), 'note pairs-note'));
    const table = el('table', undefined, 'compare');
    const head = el('tr');
    head.append(el('th', ''), el('th', runTitle(0)), el('th', runTitle(1)), el('th', t('difference')));
    table.append(head);
    FIGURES.forEach(key => {
      const a = DATA.figures[0][state.year][key];
      const b = DATA.figures[1][state.year][key];
      const [diff, low, high] = paired.difference[state.year][key];
      const row = el('tr');
      row.dataset.key = key;
      const cell = el('td', signed(key, diff), 'difference');
      if (low !== null && high !== null) cell.append(el('span', '[' + signed(key, low) + ', ' + signed(key, high) + ']', 'interval'));
      row.append(el('th', t('fig.' + key)), el('td', figure(key, a)), el('td', figure(key, b)), cell);
      table.append(row);
    });
    box.append(table);
    return box;
  }

  function signed(key, v) {
    return v === null ? '–' : (v > 0 ? '+' : '') + figure(key, v);
  }

  /* The ten largest firms, each by name: a real firm by its own name, a synthesized one as a model firm of its
     district (the note says what that is), never folded into an anonymous 'other firms' line. */
  function renderFirms() {
    const list = $('firms');
    $('firms-title').textContent = SINGLE ? t('topFirms') : '';
    const top = SINGLE ? DATA.firms[state.year].slice(0, 10) : [];
    list.replaceChildren(...top.map(r => firmItem(firmName(r), money(r[5] * 1e4) + (state.present ? '' : ' · ' + trackName(r[4])))));
    $('firms-note').textContent = top.some(r => !(r[2] || r[3])) ? t('modelFirmNote') : '';
  }

  function firmItem(name, meta) {
    const item = el('li');
    item.append(el('span', name, 'firm-name'), el('span', meta, 'firm-meta'));
    return item;
  }

  function renderToggles() {
    $('toggles').replaceChildren(...LAYERS.map(key => {
      const label = el('label', undefined, 'toggle');
      const box = el('input');
      box.type = 'checkbox';
      box.checked = state.visible[key];
      box.dataset.layer = key;
      box.addEventListener('change', () => toggle(key, box.checked));
      label.append(box, el('span', t('layer.' + key)));
      return label;
    }));
  }

  function binLabels(breaks, format) {
    const out = ['< ' + format(breaks[0])];
    for (let k = 1; k < breaks.length; k++) out.push(format(breaks[k - 1]) + ' – ' + format(breaks[k]));
    out.push('≥ ' + format(breaks[breaks.length - 1]));
    return out;
  }

  /* A layer's colour classes; with a floor (cells under it are not drawn), the lowest class starts there. */
  function sequentialLegend(key, palette, format, note) {
    const breaks = DATA[key].breaks;
    const floor = DATA[key].floor;
    const box = el('div', undefined, 'legend-block');
    box.append(el('h3', t('layer.' + key)));
    if (note) box.append(el('p', note, 'note'));
    if (floor) box.append(el('p', t('floorNote').split('{v}').join(format(floor)), 'note'));
    const rows = binLabels(breaks, format);
    if (floor) rows[0] = format(floor) + ' – ' + format(breaks[0]);
    rows.forEach((text, k) => {
      if (!(floor && k === 0 && breaks[0] <= floor)) box.append(legendRow(palette[palette.length - breaks.length - 1 + k], text));
    });
    return box;
  }

  /* Magnitude classes mirrored around zero: the neutral class is |Δ| below the first break. */
  function differenceLegend() {
    const breaks = DATA.difference.breaks;
    const magnitude = binLabels(breaks, v => money(v * 1e4));
    const box = el('div', undefined, 'legend-block');
    box.append(el('h3', t('layer.difference') + ': ' + runTitle(0) + ' − ' + runTitle(1)));
    box.append(el('p', t('differenceNote'), 'note'));
    if (DATA.difference.note) box.append(el('p', pick(...DATA.difference.note), 'note'));
    for (let k = breaks.length; k >= 1; k--) box.append(legendRow(DIVERGING[4 - k], '− ' + magnitude[k]));
    box.append(legendRow(DIVERGING[4], '|Δ| ' + magnitude[0]));
    for (let k = 1; k <= breaks.length; k++) box.append(legendRow(DIVERGING[4 + k], '+ ' + magnitude[k]));
    box.append(el('p', t('diffNote').split('{a}').join(runTitle(0)), 'note'));
    return box;
  }

  function categoricalLegend(key, rows, note) {
    const box = el('div', undefined, 'legend-block');
    box.append(el('h3', t('layer.' + key)));
    if (note) box.append(el('p', note, 'note'));
    rows.forEach(([rgb, text]) => box.append(legendRow(rgb, text)));
    return box;
  }

  function renderLegend() {
    const makers = {
      zones: () => categoricalLegend('zones', DATA.zones.slice().reverse().map(f => [(ZONE_STYLE[f.properties.zone] || OTHER_ZONE).line,
        pick(f.properties.name_zh, f.properties.name_en) + (f.properties.approximate ? t('approximate') : '')])),
      revenue: () => sequentialLegend('revenue', REVENUE_COLOURS, v => money(v * 1e4), t('revenueNote') + '; ' + t('flatNote')),
      talent: () => sequentialLegend('talent', TALENT_COLOURS, count, t('talentNote')),
      firms: () => categoricalLegend('firms', DATA.tracks.map((tr, i) => [TRACK_COLOURS[i], pick(tr[1], tr[2])]), t('firmsNote')),
      compute: () => categoricalLegend('compute', [[COMPUTE_COLOUR, t('layer.compute')]], t('computeNote')),
      parks: () => categoricalLegend('parks', [[PARK_COLOUR, t('layer.parks')]], t('parksNote')),
      difference: differenceLegend,
      basemap: () => categoricalLegend('basemap', [[WATER_COLOUR, t('water')], [URBAN_COLOUR, t('urban')], [[223, 70, 97], t('metro')]]),
      probability: () => sequentialLegend('probability', PROBABILITY_COLOURS, percent, t('probabilityNote')),
    };
    $('legend').replaceChildren(...LAYERS.filter(k => state.visible[k] && makers[k]).map(k => makers[k]()));
  }

  /* ---- state changes -------------------------------------------------- */

  /* Resolvers waiting for the next frame; the first is `ready`, settled by the first frame drawn. */
  let waiting = [];
  const ready = new Promise(resolve => waiting.push(resolve));

  function afterRender() {
    window.__mapReady = true;
    const done = waiting;
    waiting = [];
    done.forEach(resolve => resolve());
  }

  setBodyClasses();
  renderPanels();
  const view = initialView();
  let current = Object.assign({}, view); // the view as it is now, for decluttering labels
  state.near = view.zoom >= PLACE_NAMES_ZOOM;
  state.zoom = quarter(view.zoom);
  const map = new deck.Deck({
    parent: $('map'),
    initialViewState: view,
    controller: true,
    layers: [],
    getTooltip: tooltip,
    onAfterRender: afterRender,
    onViewStateChange: ({viewState}) => followZoom(viewState),
  });

  function quarter(zoom) {
    return Math.round(zoom * 4) / 4;
  }

  /* Redraw the layers when the zoom moves by a quarter step: labels and column heights depend on it. */
  function followZoom(viewState) {
    view.latitude = viewState.latitude;
    current = {longitude: viewState.longitude, latitude: viewState.latitude, zoom: viewState.zoom, pitch: viewState.pitch, bearing: viewState.bearing};
    const zoom = quarter(viewState.zoom);
    const angle = Math.round(viewState.pitch || 0) + ',' + Math.round(viewState.bearing || 0);
    if (zoom !== state.zoom || angle !== state.angle) {
      state.zoom = zoom;
      state.angle = angle;
      state.near = viewState.zoom >= PLACE_NAMES_ZOOM;
      map.setProps({layers: layers()});
    }
  }

  /* Fit the zones (in presentation mode: the labelled landmarks and plan districts, closer) into the part of the
     window the panels leave free, when there is enough of it; a label's half width more in presentation mode. */
  function initialView() {
    const [west, south, east, north] = state.present ? DATA.present_bounds : DATA.bounds;
    const width = Math.max(window.innerWidth, 320);
    const height = Math.max(window.innerHeight, 240);
    const margin = Math.min(40, width / 10, height / 10);
    const label = state.present ? 60 : 0;
    const side = $('side').offsetWidth + 20 + label;
    const layersWidth = $('layers-panel').offsetWidth + 20 + label;
    const roomy = width - side - layersWidth > width / 3;
    const top = state.present ? $('top').getBoundingClientRect().bottom + 20 : Math.min(110, height / 5);
    const padding = {top, bottom: margin, left: roomy ? side : margin, right: roomy ? layersWidth : margin};
    const fit = new deck.WebMercatorViewport({width, height}).fitBounds([[west, south], [east, north]], {padding});
    return {longitude: fit.longitude, latitude: fit.latitude, zoom: fit.zoom, pitch: SINGLE ? (state.present ? 35 : 40) : 0, bearing: 0};
  }

  function renderPanels() {
    renderHeader();
    renderFigures();
    renderFirms();
    renderToggles();
    renderLegend();
  }

  function render() {
    renderPanels();
    map.setProps({layers: layers()});
  }

  function setBodyClasses() {
    document.body.classList.add(DATA.mode);
    document.body.classList.toggle('present', state.present);
    document.body.classList.toggle('slide', SLIDE);
  }

  /* Presentation mode on or off: bigger type, slimmer panels, the landmarks in view. */
  function setPresent(on) {
    state.present = Boolean(on);
    setBodyClasses();
    renderPanels();
    const next = initialView();
    Object.assign(view, next);
    current = Object.assign({}, next);
    map.setProps({initialViewState: next});
    followZoom(next);
    render();
  }

  function setYear(year) {
    const index = DATA.years.indexOf(year);
    if (index < 0) return false;
    state.year = index;
    render();
    return true;
  }

  function toggle(key, on) {
    state.visible[key] = on;
    render();
  }

  function setLang(lang) {
    state.lang = lang === 'en' ? 'en' : 'zh';
    render();
  }

  function play() {
    if (state.timer) {
      clearInterval(state.timer);
      state.timer = null;
    } else {
      state.timer = setInterval(() => setYear(DATA.years[(state.year + 1) % DATA.years.length]), 1500);
    }
    renderHeader();
  }

  const slider = $('year-slider');
  slider.max = String(DATA.years.length - 1);
  slider.addEventListener('input', () => setYear(DATA.years[Number(slider.value)]));
  $('play').addEventListener('click', play);
  $('lang').addEventListener('click', () => setLang(state.lang === 'zh' ? 'en' : 'zh'));
  $('present').addEventListener('click', () => setPresent(!state.present));
  document.querySelectorAll('.panel > .collapse').forEach(button => button.addEventListener('click', () => {
    button.parentElement.classList.toggle('collapsed');
    renderHeader();
    map.setProps({layers: layers()}); // labels freed from under the panel may show now
  }));
  window.addEventListener('hashchange', () => setLang(hashLang() || state.lang));

  /* For tests and the PNG snapshot: read the state, drive it, wait for the next frame. */
  window.vvMap = {
    state, ready, setYear, setLang, toggle, setPresent,
    /* Where each label is drawn now, as {layer, text, x, y} in window pixels (tests check them against the panels). */
    labelsOnScreen: () => {
      const viewport = currentViewport();
      return map.props.layers.filter(layer => layer.id.endsWith('-labels') && layer.props.visible).flatMap(layer =>
        layer.props.data.map(d => {
          const text = layer.props.getText(d);
          const [x, y] = labelCentre(viewport.project(layer.props.getPosition(d)), d, labelWidth(text, layer.props.getSize) / 2 + 4);
          return {layer: layer.id.replace('-labels', ''), text, x, y};
        }));
    },
    years: DATA.years.slice(),
    layerVisible: id => map.props.layers.some(layer => layer.id === id && layer.props.visible),
    layerSize: id => (map.props.layers.find(layer => layer.id === id) || {props: {data: []}}).props.data.length,
    setView: (longitude, latitude, zoom) => new Promise(resolve => {
      const next = Object.assign({}, view, {longitude, latitude, zoom});
      waiting.push(resolve);
      map.setProps({initialViewState: next});
      followZoom(next);
    }),
    /* On-screen height in pixels of the tallest revenue column at the current zoom (before perspective). */
    tallestColumnPixels: () => TALLEST_COLUMN_M * elevationScale() / metresPerPixel(),
    project: lngLat => map.getViewports()[0].project(lngLat),
    nextFrame: () => new Promise(resolve => {
      waiting.push(resolve);
      map.redraw('snapshot');
    }),
  };
  render();
})();
