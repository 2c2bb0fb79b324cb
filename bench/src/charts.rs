//! SVG charts of a comparison, drawn with `plotters`: requests per second by server for one scenario,
//! and latency percentiles by server for one scenario. Servers come in the order measured (the book's
//! progression, then nginx), one colour per model family (`step03-fork` and `step03-prefork` share
//! one), and the latency chart's legend sits beside the plot, never over a line.

use std::path::Path;

use plotters::prelude::*;

use crate::stats::LatencySummary;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 480;
/// Room for the latency chart's legend, right of the plot.
const LEGEND_WIDTH: u32 = 170;

/// A bar per server: successful requests per second.
///
/// # Errors
///
/// When the SVG cannot be drawn or written.
pub fn throughput(path: &Path, title: &str, bars: &[(String, f64)]) -> anyhow::Result<()> {
    draw_throughput(path, title, bars)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

/// Ten colours that stay apart on white (matplotlib's "tab10").
const FAMILY_COLOURS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// A colour per model family: the part of the name before its first `-` (`step04`, `nginx`), in the
/// order families first appear in `names`.
fn family_colour<'a>(names: impl Iterator<Item = &'a str>, name: &str) -> RGBAColor {
    let family = |name: &'a str| name.split('-').next().unwrap_or(name);
    let mut families: Vec<&str> = names.map(family).collect();
    families.dedup();
    let wanted = name.split('-').next().unwrap_or(name);
    let index = families.iter().position(|&f| f == wanted).unwrap_or(0);
    let (r, g, b) = FAMILY_COLOURS[index % FAMILY_COLOURS.len()];
    RGBColor(r, g, b).to_rgba()
}

fn draw_throughput(
    path: &Path,
    title: &str,
    bars: &[(String, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    let height = HEIGHT.max(80 + 30 * bars.len() as u32);
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = bars
        .iter()
        .map(|(_, value)| *value)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    // One horizontal bar per server, top to bottom in the given order, names on the left.
    let last = bars.len().saturating_sub(1) as i32;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(130)
        .build_cartesian_2d(0.0..top, (0..last).into_segmented())?;
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
    let rows = || {
        bars.iter()
            .enumerate()
            .map(|(index, (_, value))| (last - index as i32, *value))
    };
    for (index, (name, value)) in bars.iter().enumerate() {
        let colour = family_colour(bars.iter().map(|(name, _)| name.as_str()), name);
        let row = last - index as i32;
        chart.draw_series(
            Histogram::horizontal(&chart)
                .style(colour.mix(0.7).filled())
                .margin(4)
                .data([(row, *value)]),
        )?;
    }
    chart.draw_series(rows().map(|(row, value)| {
        Text::new(
            format!(" {value:.0}"),
            (value, SegmentValue::CenterOf(row)),
            ("sans-serif", 12),
        )
    }))?;
    root.present()?;
    Ok(())
}

/// One line per server through its p50, p90, p99 and p99.9 latencies, on a logarithmic axis.
///
/// # Errors
///
/// When the SVG cannot be drawn or written.
pub fn latency(path: &Path, title: &str, lines: &[(String, LatencySummary)]) -> anyhow::Result<()> {
    draw_latency(path, title, lines).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

fn draw_latency(
    path: &Path,
    title: &str,
    lines: &[(String, LatencySummary)],
) -> Result<(), Box<dyn std::error::Error>> {
    const LABELS: [&str; 4] = ["p50", "p90", "p99", "p99.9"];
    let points = |l: &LatencySummary| [l.p50_us, l.p90_us, l.p99_us, l.p999_us];
    let all: Vec<f64> = lines
        .iter()
        .flat_map(|(_, l)| points(l))
        .filter(|v| *v > 0.0)
        .collect();
    let fastest = all.iter().copied().fold(f64::INFINITY, f64::min);
    let low = fastest.clamp(1.0, 1e6) / 1.5;
    let high = all.iter().copied().fold(0.0, f64::max).max(low * 10.0) * 1.5;
    let root = SVGBackend::new(path, (WIDTH + LEGEND_WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
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
    // Same family, same colour; a dash pattern would be clearer still, but plotters' SVG lines have
    // none: the second configuration of a family is drawn thinner instead.
    let names = || lines.iter().map(|(name, _)| name.as_str());
    for (index, (name, summary)) in lines.iter().enumerate() {
        let colour = family_colour(names(), name);
        let first_of_family =
            index == 0 || lines[index - 1].0.split('-').next() != name.split('-').next();
        let width = if first_of_family { 3 } else { 1 };
        let series = points(summary)
            .into_iter()
            .enumerate()
            .filter(|(_, v)| *v > 0.0);
        chart.draw_series(LineSeries::new(series, colour.stroke_width(width)))?;
        let y = 40 + 22 * index as i32;
        legend.draw(&PathElement::new(
            vec![(8, y), (36, y)],
            colour.stroke_width(width),
        ))?;
        legend.draw(&Text::new(name.clone(), (42, y - 7), ("sans-serif", 14)))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_charts() {
        let dir = std::env::temp_dir().join(format!("bench-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bars = vec![
            ("step07-1".to_owned(), 50_000.0),
            ("nginx-1".to_owned(), 48_000.0),
        ];
        throughput(
            &dir.join("t.svg"),
            "keep-alive, 64 connections, small page",
            &bars,
        )
        .unwrap();
        let summary = LatencySummary {
            p50_us: 100.0,
            p90_us: 200.0,
            p99_us: 900.0,
            p999_us: 2000.0,
            ..Default::default()
        };
        latency(
            &dir.join("l.svg"),
            "latency",
            &[("step07-1".to_owned(), summary)],
        )
        .unwrap();
        let svg = std::fs::read_to_string(dir.join("t.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("nginx-1"));
        assert!(
            std::fs::read_to_string(dir.join("l.svg"))
                .unwrap()
                .contains("step07-1")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
