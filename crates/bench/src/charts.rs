//! SVG charts of a comparison: latency CDF, throughput over time with the
//! fault marked, and recovery time per protocol.

use crate::aggregate::ProtocolResult;
use crate::metrics::BUCKET;
use plotters::prelude::*;
use std::path::Path;

type ChartResult = Result<(), Box<dyn std::error::Error>>;

const SIZE: (u32, u32) = (900, 480);

fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    COLORS[i % COLORS.len()]
}

/// Writes `latency_cdf.svg`, `throughput.svg` and `recovery.svg` into `dir`.
pub fn write_all(results: &[ProtocolResult], dir: &Path) -> ChartResult {
    latency_cdf(results, &dir.join("latency_cdf.svg"))?;
    throughput(results, &dir.join("throughput.svg"))?;
    recovery(results, &dir.join("recovery.svg"))?;
    Ok(())
}

/// One line per protocol, an optional vertical marker, a legend.
struct LineChart<'a> {
    caption: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    x_max: f64,
    y_max: f64,
    marker: Option<(f64, &'a str)>,
    series: Vec<(String, Vec<(f64, f64)>)>,
    /// Plot x on a log10 scale (x values and `x_max` are given unscaled).
    log_x: bool,
}

fn draw_lines(chart: LineChart<'_>, path: &Path) -> ChartResult {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let scale = |x: f64| if chart.log_x { x.max(1e-3).log10() } else { x };
    let x_min = if chart.log_x {
        chart.series.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| scale(*x))).fold(f64::MAX, f64::min).floor()
    } else {
        0.0
    };
    let mut c = ChartBuilder::on(&root)
        .caption(chart.caption, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_min.min(scale(chart.x_max) - 1.0)..scale(chart.x_max), 0f64..chart.y_max)?;
    let unscale = |x: &f64| {
        let v = if chart.log_x { 10f64.powf(*x) } else { *x };
        if v >= 100.0 || v == v.trunc() {
            format!("{v:.0}")
        } else if v >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        }
    };
    c.configure_mesh().x_desc(chart.x_desc).y_desc(chart.y_desc).x_label_formatter(&unscale).draw()?;
    if let Some((x, name)) = chart.marker {
        c.draw_series(LineSeries::new(vec![(x, 0.0), (x, chart.y_max)], BLACK.stroke_width(1)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    }
    for (i, (name, points)) in chart.series.into_iter().enumerate() {
        let col = color(i);
        let points: Vec<(f64, f64)> = points.into_iter().map(|(x, y)| (scale(x), y)).collect();
        c.draw_series(LineSeries::new(points, col.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

fn latency_cdf(results: &[ProtocolResult], path: &Path) -> ChartResult {
    let x_max = results.iter().map(|r| r.latency_ms.p999).fold(1.0, f64::max) * 1.1;
    let series = results
        .iter()
        .map(|r| {
            let lat = &r.representative.latency_sorted_ms;
            let n = lat.len().max(1) as f64;
            (r.protocol.clone(), lat.iter().enumerate().map(|(k, v)| (v.min(x_max), (k + 1) as f64 / n)).collect())
        })
        .collect();
    let chart = LineChart {
        caption: "Client latency (CDF, up to p99.9)",
        x_desc: "latency (ms, log scale)",
        y_desc: "fraction of operations",
        x_max,
        y_max: 1.0,
        marker: None,
        series,
        log_x: true,
    };
    draw_lines(chart, path)
}

fn throughput(results: &[ProtocolResult], path: &Path) -> ChartResult {
    let bucket_s = BUCKET.as_nanos() as f64 / 1e9;
    let len = results.iter().map(|r| r.representative.throughput_series.len()).max().unwrap_or(1);
    let y_max =
        results.iter().flat_map(|r| r.representative.throughput_series.iter().copied()).fold(1.0, f64::max) * 1.15;
    let series = results
        .iter()
        .map(|r| {
            let points = r.representative.throughput_series.iter().enumerate();
            (r.protocol.clone(), points.map(|(b, v)| ((b as f64 + 0.5) * bucket_s, *v)).collect())
        })
        .collect();
    let chart = LineChart {
        caption: "Throughput over time (100 ms buckets)",
        x_desc: "time (s)",
        y_desc: "operations / s",
        x_max: len as f64 * bucket_s,
        y_max,
        marker: results.iter().find_map(|r| r.representative.fault_at_ms).map(|at| (at / 1e3, "fault")),
        series,
        log_x: false,
    };
    draw_lines(chart, path)
}

fn recovery(results: &[ProtocolResult], path: &Path) -> ChartResult {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let values: Vec<(f64, f64)> =
        results.iter().map(|r| (r.recovery_ms.unwrap_or(0.0), r.recovery_to_90pct_ms.unwrap_or(0.0))).collect();
    let ymax = values.iter().map(|(a, b)| a.max(*b)).fold(1.0, f64::max) * 1.15;
    let n = results.len().max(1);
    let names: Vec<String> = results.iter().map(|r| r.protocol.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption("Recovery after the fault (median)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, 0f64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.26 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("milliseconds")
        .draw()?;
    let first = color(0);
    let back = color(1);
    chart
        .draw_series(
            values
                .iter()
                .enumerate()
                .map(|(i, (a, _))| Rectangle::new([(i as f64 + 0.15, 0.0), (i as f64 + 0.5, *a)], first.filled())),
        )?
        .label("to first write")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], first.filled()));
    chart
        .draw_series(
            values
                .iter()
                .enumerate()
                .map(|(i, (_, b))| Rectangle::new([(i as f64 + 0.5, 0.0), (i as f64 + 0.85, *b)], back.filled())),
        )?
        .label("to 90% throughput")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], back.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}
