//! SVG charts of a comparison, drawn with `plotters`: requests per second by server for one scenario,
//! and latency percentiles by server for one scenario. Servers come in the order measured (the book's
//! progression, then nginx), one colour per model family (`step03-fork` and `step03-prefork` share
//! one), and the latency chart's legend sits beside the plot, never over a line.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::stats::LatencySummary;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 480;
/// Room for the latency chart's legend, right of the plot.
const LEGEND_WIDTH: u32 = 170;

/// Ten colours that stay apart on white (matplotlib's "tab10").
const FAMILY_COLOURS: [u32; 10] = [
    0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22,
    0x17becf,
];

/// The part of a server's name before its first `-`: `step04`, `nginx`.
fn family(name: &str) -> &str {
    name.split('-').next().unwrap_or(name)
}

/// A colour per model family, in the order families first appear in `names`.
fn family_colour<'a>(names: impl Iterator<Item = &'a str>, name: &str) -> RGBColor {
    let mut families: Vec<&str> = names.map(family).collect();
    families.dedup();
    let index = families
        .iter()
        .position(|&f| f == family(name))
        .unwrap_or(0);
    let [_, r, g, b] = FAMILY_COLOURS[index % FAMILY_COLOURS.len()].to_be_bytes();
    RGBColor(r, g, b)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws an SVG of `size` into `path` with `draw`, on white.
fn svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Result<(), Box<dyn Error>>,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, size).into_drawing_area();
    let drawn = root
        .fill(&WHITE)
        .map_err(Box::from)
        .and_then(|()| draw(&root))
        .and_then(|()| Ok(root.present()?));
    drawn.map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

/// A bar per server: successful requests per second.
pub(crate) fn throughput(path: &Path, title: &str, bars: &[(String, f64)]) -> anyhow::Result<()> {
    let height = HEIGHT.max(80 + 30 * bars.len() as u32);
    svg(path, (WIDTH, height), |root| {
        let top = bars.iter().map(|(_, value)| *value).fold(0.0, f64::max);
        // One horizontal bar per server, top to bottom in the given order, names on the left.
        let last = bars.len().saturating_sub(1) as i32;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(130)
            .build_cartesian_2d(0.0..top.max(1.0) * 1.15, (0..last).into_segmented())?;
        let name_at = |value: &SegmentValue<i32>| match value {
            SegmentValue::CenterOf(row) => usize::try_from(last - row)
                .ok()
                .and_then(|index| bars.get(index))
                .map(|(name, _)| name.clone())
                .unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("successful requests per second (req/s)")
            .y_desc("server")
            .y_labels(bars.len().max(1))
            .y_label_style(("sans-serif", 14))
            .y_label_formatter(&name_at)
            .x_label_formatter(&|value| format!("{value:.0}"))
            .draw()?;
        let rows = bars.iter().enumerate();
        let rows = || {
            rows.clone()
                .map(|(index, (name, value))| (name, last - index as i32, *value))
        };
        for (name, row, value) in rows() {
            let colour = family_colour(bars.iter().map(|(name, _)| name.as_str()), name);
            chart.draw_series(
                Histogram::horizontal(&chart)
                    .style(colour.mix(0.7).filled())
                    .margin(4)
                    .data([(row, value)]),
            )?;
        }
        chart.draw_series(rows().map(|(_, row, value)| {
            let at = (value, SegmentValue::CenterOf(row));
            Text::new(format!(" {value:.0}"), at, ("sans-serif", 12))
        }))?;
        Ok(())
    })
}

/// One line per server through its p50, p90, p99 and p99.9 latencies, on a logarithmic axis.
pub(crate) fn latency(
    path: &Path,
    title: &str,
    lines: &[(String, LatencySummary)],
) -> anyhow::Result<()> {
    const LABELS: [&str; 4] = ["p50", "p90", "p99", "p99.9"];
    let points = |l: &LatencySummary| [l.p50_us, l.p90_us, l.p99_us, l.p999_us];
    let all = lines
        .iter()
        .flat_map(|(_, l)| points(l))
        .filter(|v| *v > 0.0);
    let fastest = all.clone().fold(f64::INFINITY, f64::min);
    let low = fastest.clamp(1.0, 1e6) / 1.5;
    let high = all.fold(0.0, f64::max).max(low * 10.0) * 1.5;
    svg(path, (WIDTH + LEGEND_WIDTH, HEIGHT), |root| {
        let (plot, legend) = root.split_horizontally(WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0..LABELS.len() - 1, (low..high).log_scale())?;
        chart
            .configure_mesh()
            .x_labels(LABELS.len())
            .x_label_formatter(&|index| LABELS.get(*index).copied().unwrap_or("").to_owned())
            .x_desc("percentile")
            .y_desc("latency (µs, log scale)")
            .y_label_formatter(&|value| format!("{value:.0}"))
            .draw()?;
        // Same family, same colour; a dash pattern would be clearer still, but plotters' SVG lines
        // have none: the second configuration of a family is drawn thinner instead.
        for (index, (name, summary)) in lines.iter().enumerate() {
            let colour = family_colour(lines.iter().map(|(name, _)| name.as_str()), name);
            let first_of_family = index == 0 || family(&lines[index - 1].0) != family(name);
            let style = colour.stroke_width(if first_of_family { 3 } else { 1 });
            let series = points(summary).into_iter().enumerate();
            chart.draw_series(LineSeries::new(series.filter(|(_, v)| *v > 0.0), style))?;
            let y = 40 + 22 * index as i32;
            legend.draw(&PathElement::new(vec![(8, y), (36, y)], style))?;
            legend.draw(&Text::new(name.clone(), (42, y - 7), ("sans-serif", 14)))?;
        }
        Ok(())
    })
}

/// The axes of [`log_lines`]: their descriptions, and whether to draw the diagonal y = x (grey,
/// "as many as asked").
pub(crate) struct LogAxes<'a> {
    pub(crate) x: &'a str,
    pub(crate) y: &'a str,
    pub(crate) diagonal: bool,
}

/// The range of a logarithmic axis around `values` (positive ones), a little wider on each side.
fn log_range(values: impl Iterator<Item = f64> + Clone) -> std::ops::Range<f64> {
    let positive = values.filter(|v| *v > 0.0 && v.is_finite());
    let low = positive.clone().fold(f64::INFINITY, f64::min);
    let high = positive.fold(0.0, f64::max);
    if high <= 0.0 {
        return 1.0..10.0;
    }
    let low = low / 1.5;
    low..(high * 1.5).max(low * 10.0)
}

// ANCHOR: log_lines
/// One line per server through its (x, y) points, both axes logarithmic, each point marked (a
/// server measured at one count only is a dot); `xs` are every x asked for, so that the axis
/// spans them all even where nothing was measured. The legend sits beside the plot.
pub(crate) fn log_lines(
    path: &Path,
    title: &str,
    axes: &LogAxes<'_>,
    xs: &[f64],
    lines: &[(String, Vec<(f64, f64)>)],
) -> anyhow::Result<()> {
    let all_x = xs
        .iter()
        .copied()
        .chain(lines.iter().flat_map(|(_, l)| l.iter().map(|p| p.0)));
    let x_range = log_range(all_x);
    let all_y = lines.iter().flat_map(|(_, l)| l.iter().map(|p| p.1));
    let mut y_range = log_range(all_y);
    if axes.diagonal {
        y_range = y_range.start.min(x_range.start)..y_range.end.max(x_range.end);
    }
    let height = HEIGHT.max(60 + 22 * (lines.len() as u32 + 1));
    svg(path, (WIDTH + LEGEND_WIDTH + 40, height), |root| {
        let (plot, legend) = root.split_horizontally(WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range.clone().log_scale(), y_range.log_scale())?;
        chart
            .configure_mesh()
            .x_desc(axes.x)
            .y_desc(axes.y)
            .x_label_formatter(&|value| format!("{value:.0}"))
            .y_label_formatter(&|value| format!("{value:.0}"))
            .draw()?;
        let mut row = 0;
        let mut legend_line = |style: ShapeStyle, name: &str| -> Result<(), Box<dyn Error>> {
            let y = 40 + 22 * row;
            row += 1;
            legend.draw(&PathElement::new(vec![(8, y), (36, y)], style))?;
            legend.draw(&Text::new(name.to_owned(), (42, y - 7), ("sans-serif", 14)))?;
            Ok(())
        };
        if axes.diagonal {
            let grey = RGBColor(0x99, 0x99, 0x99).stroke_width(1);
            let ends = [x_range.start, x_range.end].map(|x| (x, x));
            chart.draw_series(LineSeries::new(ends, grey))?;
            legend_line(grey, "as many as asked")?;
        }
        // Same family, same colour; the second configuration of a family is drawn thinner (see
        // `latency`).
        for (index, (name, points)) in lines.iter().enumerate() {
            let colour = family_colour(lines.iter().map(|(name, _)| name.as_str()), name);
            let first_of_family = index == 0 || family(&lines[index - 1].0) != family(name);
            let style = colour.stroke_width(if first_of_family { 3 } else { 1 });
            chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
            chart.draw_series(
                points
                    .iter()
                    .map(|&point| Circle::new(point, 3, colour.filled())),
            )?;
            legend_line(style, name)?;
        }
        Ok(())
    })
}
// ANCHOR_END: log_lines

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_charts() {
        let dir = tempfile::tempdir().unwrap();
        let bars = vec![
            ("step07-1".to_owned(), 50_000.0),
            ("nginx-1".to_owned(), 48_000.0),
        ];
        let title = "keep-alive, 64 connections, small page";
        throughput(&dir.path().join("t.svg"), title, &bars).unwrap();
        let summary = LatencySummary {
            p50_us: 100.0,
            p90_us: 200.0,
            p99_us: 900.0,
            p999_us: 2000.0,
            ..Default::default()
        };
        let lines = [("step07-1".to_owned(), summary)];
        latency(&dir.path().join("l.svg"), "latency", &lines).unwrap();
        let svg = |name| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(svg("t.svg").contains("<svg") && svg("t.svg").contains("nginx-1"));
        assert!(svg("l.svg").contains("step07-1"));
        let axes = LogAxes {
            x: "connections",
            y: "established",
            diagonal: true,
        };
        let lines = [
            (
                "step07-1".to_owned(),
                vec![(1000.0, 1000.0), (10_000.0, 10_000.0)],
            ),
            ("step04-spawn".to_owned(), vec![(1000.0, 1000.0)]),
            ("step01".to_owned(), Vec::new()),
        ];
        log_lines(
            &dir.path().join("s.svg"),
            "sweep",
            &axes,
            &[1000.0, 1e5],
            &lines,
        )
        .unwrap();
        let sweep = svg("s.svg");
        assert!(sweep.contains("as many as asked") && sweep.contains("step04-spawn"));
        assert!(sweep.contains("<circle"), "every point marked");
    }
}
