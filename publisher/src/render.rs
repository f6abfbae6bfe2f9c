//! Human output: where lines go, progress (indicatif bars on a terminal,
//! plain periodic lines otherwise, never a control character when stdout
//! is not a terminal), one readable line per event, tables and sizes.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hostkit_proto::event::ProgressUnit;
use hostkit_proto::{Event, EventKind};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed for one item, at most.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Where and how the command writes.
///
/// Human mode: lines on stdout. JSON mode (`--json`): stdout carries only
/// JSON; the human lines go to stderr.
#[derive(Debug)]
pub struct Output {
    json: bool,
    bars: Option<MultiProgress>,
    progress: Mutex<HashMap<String, Item>>,
}

#[derive(Debug)]
struct Item {
    bar: Option<ProgressBar>,
    total: Option<u64>,
    done: u64,
    printed: Option<Instant>,
}

impl Output {
    /// Output for this process: bars only when stdout is a terminal and
    /// not in JSON mode.
    pub fn new(json: bool) -> Output {
        let tty = std::io::stdout().is_terminal();
        let bars =
            (tty && !json).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Output {
            json,
            bars,
            progress: Mutex::new(HashMap::new()),
        }
    }

    /// Whether stdout carries JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// A human line (stdout; stderr in JSON mode).
    pub fn line(&self, text: impl AsRef<str>) {
        let text = text.as_ref();
        if self.json {
            eprintln!("{text}");
        } else if let Some(bars) = &self.bars {
            let _ = bars.println(text);
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    /// A line of a command's standard error, on stderr.
    pub fn stderr_line(&self, text: impl AsRef<str>) {
        match &self.bars {
            Some(bars) => bars.suspend(|| eprintln!("{}", text.as_ref())),
            None => eprintln!("{}", text.as_ref()),
        }
    }

    /// A warning, always on stderr.
    pub fn warn(&self, text: impl AsRef<str>) {
        match &self.bars {
            Some(bars) => bars.suspend(|| eprintln!("warning: {}", text.as_ref())),
            None => eprintln!("warning: {}", text.as_ref()),
        }
    }

    /// One JSON value on its own line of stdout.
    pub fn json_line(&self, value: &impl serde::Serialize) {
        let mut out = std::io::stdout().lock();
        // Writing to a closed pipe is not worth a panic.
        if let Ok(text) = serde_json::to_string(value) {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    /// Progress of `what`: a bar on a terminal; else a line when it starts,
    /// at most every few seconds, and when it completes.
    pub fn progress(&self, what: &str, done: u64, total: Option<u64>, unit: ProgressUnit) {
        let mut items = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        // A new round for the same label (the next image): start afresh.
        if items
            .get(what)
            .is_some_and(|item| done < item.done || total != item.total)
        {
            if let Some(bar) = items.remove(what).and_then(|item| item.bar) {
                bar.finish_and_clear();
            }
        }
        let item = items.entry(what.to_owned()).or_insert_with(|| Item {
            bar: self
                .bars
                .as_ref()
                .map(|bars| bars.add(new_bar(what, total, unit))),
            total,
            done: 0,
            printed: None,
        });
        item.done = done;
        let complete = total.is_some_and(|t| done >= t);
        let mut line = None;
        match &item.bar {
            Some(bar) => {
                bar.set_position(done);
                if complete {
                    bar.finish_and_clear();
                }
            }
            None => {
                let due = item
                    .printed
                    .is_none_or(|at| at.elapsed() >= PLAIN_PROGRESS_EVERY);
                if due || complete {
                    item.printed = Some(Instant::now());
                    line = Some(format!("  {what}: {}", amount(done, total, unit)));
                }
            }
        }
        if complete {
            items.remove(what);
        }
        drop(items);
        if let Some(line) = line {
            self.line(line);
        }
    }

    /// Ends every progress bar (before a final line).
    pub fn finish_progress(&self) {
        let mut items = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        for (_, item) in items.drain() {
            if let Some(bar) = item.bar {
                bar.finish_and_clear();
            }
        }
    }
}

fn new_bar(what: &str, total: Option<u64>, unit: ProgressUnit) -> ProgressBar {
    let bytes = unit == ProgressUnit::Bytes;
    let (template, bar) = match total {
        Some(total) => (
            if bytes {
                "  {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}"
            } else {
                "  {prefix} [{bar:30}] {pos}/{len}"
            },
            ProgressBar::new(total),
        ),
        None => (
            if bytes {
                "  {prefix} {spinner} {bytes}"
            } else {
                "  {prefix} {spinner} {pos}"
            },
            ProgressBar::no_length(),
        ),
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.with_style(style).with_prefix(what.to_owned())
}

/// `12.0 MiB / 48.0 MiB (25%)`, `3 / 4`, `12.0 MiB`.
pub fn amount(done: u64, total: Option<u64>, unit: ProgressUnit) -> String {
    let show = |n: u64| {
        if unit == ProgressUnit::Bytes {
            bytes(n)
        } else {
            n.to_string()
        }
    };
    match total {
        Some(total) if total > 0 => format!(
            "{} / {} ({}%)",
            show(done),
            show(total),
            done.saturating_mul(100) / total
        ),
        _ => show(done),
    }
}

/// A byte count for humans: `512 B`, `3.1 KiB`, `12.0 MiB`, `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    hostkit_proto::units::bytes(n)
}

/// A duration for humans: `850ms`, `3.2s`, `4m 05s`, `1h 02m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, secs % 3600 / 60)
    }
}

/// How long ago `at` was: `3s ago`, `5m ago`, `2h ago`, `4d ago`.
pub fn ago(at: DateTime<Utc>) -> String {
    let secs = Utc::now().signed_duration_since(at).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86400),
    }
}

/// Columns aligned with two spaces; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                text.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        text.trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// The readable line for a job event (`None` for progress, which is drawn
/// with [`Output::progress`]).
pub fn job_line(event: &Event) -> Option<String> {
    let line = match &event.kind {
        EventKind::Queued { position } => format!(
            "queued on {}: {position} job(s) of this domain ahead",
            event.node
        ),
        EventKind::Started { job_kind } => format!("started {job_kind} on {}", event.node),
        EventKind::Step { name, message } => format!("▸ {name}: {message}"),
        EventKind::Progress { .. } => return None,
        EventKind::Service {
            service,
            replica,
            state,
        } => format!("  {service}#{replica} {state}"),
        EventKind::Warning { message, code } => match code {
            Some(code) => format!("warning ({code}): {message}"),
            None => format!("warning: {message}"),
        },
        EventKind::Succeeded {
            version,
            duration_ms,
        } => {
            let took = duration(Duration::from_millis(*duration_ms));
            match version {
                Some(v) => format!("✓ succeeded: v{v} on {} in {took}", event.node),
                None => format!("✓ succeeded on {} in {took}", event.node),
            }
        }
        EventKind::Output { stream, lines } => lines
            .iter()
            .map(|line| format!("  {stream}| {line}"))
            .collect::<Vec<_>>()
            .join("\n"),
        EventKind::Failed {
            code,
            message,
            hint,
            rolled_back_to,
            ..
        } => {
            let mut text = format!("✗ failed ({code}): {message}");
            if let Some(hint) = hint {
                text.push_str(&format!("\n  hint: {hint}"));
            }
            if let Some(v) = rolled_back_to {
                text.push_str(&format!("\n  rolled back to v{v}"));
            }
            text
        }
        EventKind::Superseded { by } => {
            format!("superseded by job {by}: a newer deploy replaces this one before it ran")
        }
        other => other_line(event, other),
    };
    Some(line)
}

/// The readable line for any event in `hostkit watch`: time, domain, what.
pub fn watch_line(event: &Event) -> String {
    let at = event.at.format("%H:%M:%S");
    let scope = match (&event.domain, &event.job_id) {
        (Some(domain), Some(job)) => format!("{domain} job {job}"),
        (Some(domain), None) => domain.to_string(),
        _ => format!("node {}", event.node),
    };
    let what = match &event.kind {
        EventKind::Progress {
            what,
            done,
            total,
            unit,
        } => format!("{what}: {}", amount(*done, *total, *unit)),
        kind if kind.category() == hostkit_proto::event::EventCategory::Job => {
            job_line(event).unwrap_or_default()
        }
        other => other_line(event, other),
    };
    format!("{at} {scope}: {}", what.trim_start())
}

fn other_line(event: &Event, kind: &EventKind) -> String {
    let replica = |service: &str, replica: &Option<u32>, container: &str| match replica {
        Some(n) => format!("{service}#{n} ({container})"),
        None => format!("{service} ({container})"),
    };
    match kind {
        EventKind::Healthy {
            service,
            replica: r,
            container,
        } => format!("{} healthy", replica(service, r, container)),
        EventKind::Unhealthy {
            service,
            replica: r,
            container,
        } => format!("{} unhealthy", replica(service, r, container)),
        EventKind::Exited {
            service,
            replica: r,
            container,
            exit_code,
        } => match exit_code {
            Some(code) => format!("{} exited with code {code}", replica(service, r, container)),
            None => format!("{} exited", replica(service, r, container)),
        },
        EventKind::Oom {
            service,
            replica: r,
            container,
        } => format!("{} killed: out of memory", replica(service, r, container)),
        EventKind::Restarting {
            service,
            replica: r,
            container,
        } => format!("{} restarting", replica(service, r, container)),
        EventKind::Heartbeat {
            version,
            domains,
            running_jobs,
            queue_depth,
            capacity,
        } => format!(
            "heartbeat (v{version}): {} domain(s), {running_jobs} running, {queue_depth} waiting, capacity {capacity}",
            domains.len()
        ),
        EventKind::Online { version } => format!("online (worker {version})"),
        EventKind::Offline {} => "offline".to_owned(),
        other => format!("{} event from {}", other.kind_str(), event.node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 * 1024 * 1024), "12.0 MiB");
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(3200)), "3.2s");
        assert_eq!(duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(amount(25, Some(100), ProgressUnit::Items), "25 / 100 (25%)");
    }

    #[test]
    fn tables_align() {
        let text = table(
            &["NODE", "STATE"],
            &[
                vec!["vps-1".into(), "online".into()],
                vec!["a".into(), "x".into()],
            ],
        );
        assert_eq!(text, "NODE   STATE\nvps-1  online\na      x");
    }

    #[test]
    fn lines_have_no_control_characters() {
        let node: hostkit_proto::NodeId = "vps-1".parse().unwrap();
        let domain: hostkit_proto::Domain = "example.com".parse().unwrap();
        let kinds = [
            EventKind::Step {
                name: "check".into(),
                message: "loading".into(),
            },
            EventKind::Failed {
                code: hostkit_proto::ErrorCode::HealthTimeout,
                message: "web: unhealthy".into(),
                hint: Some("check the logs".into()),
                rolled_back_to: Some(2),
                exit_code: None,
            },
        ];
        for kind in kinds {
            let event = Event::for_job(
                node.clone(),
                1,
                domain.clone(),
                hostkit_proto::JobId::new(),
                kind,
            );
            let line = job_line(&event).unwrap();
            assert!(
                !line.chars().any(|c| c.is_control() && c != '\n'),
                "{line:?}"
            );
            let watched = watch_line(&event);
            assert!(watched.contains("example.com job"), "{watched}");
        }
    }
}
