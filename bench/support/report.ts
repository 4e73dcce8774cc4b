// Hand-rolled SVG: a few line panels stacked in one file, no chart library.

export interface Series {
  label: string
  color: string
  dashed?: boolean
  points: Array<[number, number]>
  /** Draw dots at each point (a ramp has few points). */
  dots?: boolean
}

export interface Panel {
  title: string
  xLabel: string
  yLabel: string
  series: Series[]
  /** Log scale on y: the relay's sub-millisecond figures and Natter's tens of ms on one chart. */
  logY?: boolean
  /** Horizontal reference lines, e.g. the goals. */
  marks?: Array<{ y: number, label: string }>
}

const WIDTH = 900
const PANEL_HEIGHT = 300
const MARGIN = { left: 70, right: 190, top: 34, bottom: 46 }

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function niceTicks(min: number, max: number, count = 6): number[] {
  if (max <= min) max = min + 1
  const raw = (max - min) / count
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map(f => f * magnitude).find(s => s >= raw) ?? 10 * magnitude
  const ticks: number[] = []
  for (let tick = Math.ceil(min / step) * step; tick <= max + step * 1e-9; tick += step) ticks.push(Math.round(tick * 1e6) / 1e6)
  return ticks
}

const formatTick = (value: number) => (Math.abs(value) >= 1000 ? `${value / 1000}k` : String(value))

function renderPanel(panel: Panel, top: number): string {
  const points = panel.series.flatMap(series => series.points).filter(([, y]) => Number.isFinite(y))
  const xs = points.map(([x]) => x)
  const ys = points.map(([, y]) => y).concat((panel.marks ?? []).map(mark => mark.y))
  const xMin = xs.length ? Math.min(...xs) : 0
  const xMax = xs.length ? Math.max(...xs) : 1
  const plotW = WIDTH - MARGIN.left - MARGIN.right
  const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom
  const x0 = MARGIN.left
  const y0 = top + MARGIN.top
  let yMin: number
  let yMax: number
  let yTicks: number[]
  let scaleY: (y: number) => number
  if (panel.logY) {
    const positive = ys.filter(y => y > 0)
    yMin = 10 ** Math.floor(Math.log10(positive.length ? Math.min(...positive) : 0.1))
    yMax = 10 ** Math.ceil(Math.log10(positive.length ? Math.max(...positive) : 10))
    if (yMax <= yMin) yMax = yMin * 10
    yTicks = []
    for (let tick = yMin; tick <= yMax * 1.0001; tick *= 10) yTicks.push(Math.round(tick * 1e6) / 1e6)
    scaleY = y => y0 + plotH - ((Math.log10(Math.max(y, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH
  }
  else {
    yMin = 0
    yMax = ys.length ? Math.max(...ys) * 1.08 : 1
    yTicks = niceTicks(yMin, yMax)
    yMax = Math.max(yMax, yTicks[yTicks.length - 1]!)
    scaleY = y => y0 + plotH - ((y - yMin) / (yMax - yMin || 1)) * plotH
  }
  const scaleX = (x: number) => x0 + ((x - xMin) / (xMax - xMin || 1)) * plotW
  const out: string[] = []
  out.push(`<text x="${x0}" y="${top + 20}" font-size="14" font-weight="bold">${escape(panel.title)}</text>`)
  out.push(`<rect x="${x0}" y="${y0}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`)
  for (const tick of yTicks) {
    const y = scaleY(tick)
    out.push(`<line x1="${x0}" x2="${x0 + plotW}" y1="${y}" y2="${y}" stroke="#eee"/>`)
    out.push(`<text x="${x0 - 6}" y="${y + 4}" font-size="11" text-anchor="end">${formatTick(tick)}</text>`)
  }
  for (const tick of niceTicks(xMin, xMax, 8)) {
    if (tick < xMin || tick > xMax) continue
    const x = scaleX(tick)
    out.push(`<line x1="${x}" x2="${x}" y1="${y0 + plotH}" y2="${y0 + plotH + 4}" stroke="#999"/>`)
    out.push(`<text x="${x}" y="${y0 + plotH + 17}" font-size="11" text-anchor="middle">${formatTick(tick)}</text>`)
  }
  out.push(`<text x="${x0 + plotW / 2}" y="${y0 + plotH + 36}" font-size="12" text-anchor="middle">${escape(panel.xLabel)}</text>`)
  out.push(`<text x="${x0 - 52}" y="${y0 + plotH / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 ${x0 - 52} ${y0 + plotH / 2})">${escape(panel.yLabel)}${panel.logY ? ' (log)' : ''}</text>`)
  for (const mark of panel.marks ?? []) {
    const y = scaleY(mark.y)
    out.push(`<line x1="${x0}" x2="${x0 + plotW}" y1="${y}" y2="${y}" stroke="#c00" stroke-dasharray="2 3"/>`)
    out.push(`<text x="${x0 + plotW - 4}" y="${y - 4}" font-size="10" text-anchor="end" fill="#c00">${escape(mark.label)}</text>`)
  }
  panel.series.forEach((series, index) => {
    const visible = series.points.filter(([, y]) => Number.isFinite(y) && (!panel.logY || y > 0))
    if (visible.length) {
      const d = visible.map(([x, y], i) => `${i ? 'L' : 'M'}${scaleX(x).toFixed(1)},${scaleY(y).toFixed(1)}`).join(' ')
      out.push(`<path d="${d}" fill="none" stroke="${series.color}" stroke-width="1.6"${series.dashed ? ' stroke-dasharray="5 4"' : ''}/>`)
      if (series.dots) for (const [x, y] of visible) out.push(`<circle cx="${scaleX(x).toFixed(1)}" cy="${scaleY(y).toFixed(1)}" r="3" fill="${series.color}"/>`)
    }
    const ly = y0 + 8 + index * 18
    out.push(`<line x1="${x0 + plotW + 12}" x2="${x0 + plotW + 36}" y1="${ly}" y2="${ly}" stroke="${series.color}" stroke-width="2"${series.dashed ? ' stroke-dasharray="5 4"' : ''}/>`)
    out.push(`<text x="${x0 + plotW + 42}" y="${ly + 4}" font-size="11">${escape(series.label)}</text>`)
  })
  return out.join('\n')
}

export function renderSvg(title: string, panels: Panel[]): string {
  const height = 40 + panels.length * PANEL_HEIGHT
  const body = panels.map((panel, index) => renderPanel(panel, 40 + index * PANEL_HEIGHT)).join('\n')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${MARGIN.left}" y="24" font-size="16" font-weight="bold">${escape(title)}</text>
${body}
</svg>
`
}

/** A markdown table from a header row and body rows. */
export function table(header: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map(cell => String(cell)).join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

export const ms = (value: number | undefined) => (value === undefined ? '–' : `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`)
export const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || !b ? '–' : `${(a / b).toFixed(1)}×`)
