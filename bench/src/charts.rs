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
    }
}
