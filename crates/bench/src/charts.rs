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

fn latency_cdf(results: &[ProtocolResult], path: &Path) -> ChartResult {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let xmax = results.iter().map(|r| r.latency_ms.p999).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption("Client latency (CDF, up to p99.9)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, 0f64..1f64)?;
    chart.configure_mesh().x_desc("latency (ms)").y_desc("fraction of operations").draw()?;
    for (i, r) in results.iter().enumerate() {
        let lat = &r.representative.latency_sorted_ms;
        let n = lat.len().max(1) as f64;
        let points = lat.iter().enumerate().map(|(k, v)| (v.min(xmax), (k + 1) as f64 / n));
        let c = color(i);
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))?
            .label(r.protocol.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

fn throughput(results: &[ProtocolResult], path: &Path) -> ChartResult {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let bucket_s = BUCKET.as_nanos() as f64 / 1e9;
    let len = results.iter().map(|r| r.representative.throughput_series.len()).max().unwrap_or(1);
    let xmax = len as f64 * bucket_s;
    let ymax =
        results.iter().flat_map(|r| r.representative.throughput_series.iter().copied()).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption("Throughput over time (100 ms buckets)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
    chart.configure_mesh().x_desc("time (s)").y_desc("operations / s").draw()?;
    if let Some(at) = results.iter().find_map(|r| r.representative.fault_at_ms) {
        let x = at / 1e3;
        chart
            .draw_series(LineSeries::new(vec![(x, 0.0), (x, ymax)], BLACK.stroke_width(1)))?
            .label("fault")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    }
    for (i, r) in results.iter().enumerate() {
        let points =
            r.representative.throughput_series.iter().enumerate().map(|(b, v)| ((b as f64 + 0.5) * bucket_s, *v));
        let c = color(i);
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))?
            .label(r.protocol.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
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
