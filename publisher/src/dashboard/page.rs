//! The dashboard's HTML, rendered on the server: the whole page with the
//! current state (no empty page until the next event), the cards the live
//! feed replaces one by one, and a job's history. A few lines of plain
//! JavaScript (no build step) swap cards in as server-sent events arrive
//! and reload the page after a lost connection.

use chrono::{DateTime, Utc};
use hostkit_proto::Event;

use super::state::{DomainView, Fleet, NodeView};

/// Text safe inside HTML elements and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The id of a card's element.
pub fn card_id(kind: &str, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{kind}-{safe}")
}

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; gap: 16px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
#status { font-size: 12px; opacity: .8; }
main { padding: 16px 20px; display: grid; gap: 16px; }
h2 { font-size: 15px; margin: 4px 0; }
.cards { display: grid; gap: 12px; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); }
.card { background: #fff; border-radius: 6px; padding: 10px 12px; box-shadow: 0 1px 2px rgba(0,0,0,.12); }
.card h3 { margin: 0 0 6px; font-size: 15px; display: flex; justify-content: space-between; }
.pill { font-size: 11px; padding: 1px 7px; border-radius: 9px; background: #dde1e7; }
.ok, .healthy, .succeeded, .online, .running { background: #cdeccf; }
.bad, .unhealthy, .failed, .offline, .exited, .oom { background: #f6cfcf; }
.queued, .restarting, .superseded, .starting { background: #f7e7b5; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
td { padding: 2px 4px; vertical-align: top; border-top: 1px solid #eee; }
.steps { font-size: 12px; color: #4a5263; margin: 2px 0 0 8px; }
#log { font: 12px/1.5 ui-monospace, monospace; background: #fff; padding: 8px 12px; border-radius: 6px; max-height: 260px; overflow: auto; }
a { color: #2456c4; text-decoration: none; }
"#;

const SCRIPT: &str = r#"
(function () {
  const status = document.getElementById('status');
  let lost = false;
  const feed = new EventSource('/events');
  feed.onopen = () => { if (lost) { location.reload(); } status.textContent = 'live'; };
  feed.onerror = () => { lost = true; status.textContent = 'reconnecting…'; };
  feed.addEventListener('reload', () => location.reload());
  feed.addEventListener('hostkit', (message) => {
    const update = JSON.parse(message.data);
    for (const card of update.cards) {
      const old = document.getElementById(card.id);
      if (old) { old.outerHTML = card.html; }
      else { document.getElementById(card.list).insertAdjacentHTML('beforeend', card.html); }
    }
    if (update.line) {
      const log = document.getElementById('log');
      log.insertAdjacentHTML('afterbegin', update.line);
      while (log.children.length > 100) { log.removeChild(log.lastChild); }
    }
  });
})();
"#;

/// The whole page.
pub fn page(fleet: &Fleet, now: DateTime<Utc>, log: &[String]) -> String {
    let nodes: String = fleet.nodes.values().map(|n| node_card(n, now)).collect();
    let domains: String = fleet.domains.values().map(domain_card).collect();
    let lines: String = log.iter().rev().cloned().collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>HostKit</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>\
<body><header><h1>HostKit</h1><span id=\"status\">loading</span>\
<span>{} node(s), {} domain(s)</span></header><main>\
<section><h2>Nodes</h2><div class=\"cards\" id=\"nodes\">{nodes}</div></section>\
<section><h2>Domains</h2><div class=\"cards\" id=\"domains\">{domains}</div></section>\
<section><h2>Events</h2><div id=\"log\">{lines}</div></section>\
</main><script>{SCRIPT}</script></body></html>\n",
        fleet.nodes.len(),
        fleet.domains.len(),
    )
}

/// A node's card.
pub fn node_card(node: &NodeView, now: DateTime<Utc>) -> String {
    let (class, word) = if node.online(now) {
        ("online", "online")
    } else {
        ("offline", "offline")
    };
    let seen = node.last_seen.map_or_else(
        || "never".to_owned(),
        |t| format!("{}s ago", (now - t).num_seconds().max(0)),
    );
    format!(
        "<div class=\"card node\" id=\"{id}\"><h3><span>{name}</span><span class=\"pill {class}\">{word}</span></h3>\
<table><tr><td>version</td><td>{version}</td></tr><tr><td>last heartbeat</td><td>{seen}</td></tr>\
<tr><td>domains</td><td>{domains}</td></tr><tr><td>jobs</td><td>{running} running, {waiting} waiting</td></tr></table></div>",
        id = card_id("node", &node.node),
        name = escape(&node.node),
        version = escape(&node.version),
        domains = escape(&node.domains.join(", ")),
        running = node.running,
        waiting = node.waiting,
    )
}

/// A domain's card: version, services, its last jobs (the newest with its
/// steps and progress).
pub fn domain_card(domain: &DomainView) -> String {
    let version = domain
        .version
        .map_or_else(|| "no version".to_owned(), |v| format!("v{v}"));
    let services: String = domain
        .services
        .iter()
        .map(|(name, service)| {
            let replicas: Vec<String> = service
                .replicas
                .iter()
                .map(|(n, state)| format!("#{n} {}", escape(state)))
                .collect();
            let health = service.health.as_deref().unwrap_or("");
            format!(
                "<tr class=\"service\"><td>{}</td><td>{} replica(s): {}</td><td><span class=\"pill {h}\">{h}</span></td></tr>",
                escape(name),
                service.replicas.len(),
                replicas.join(", "),
                h = escape(health),
            )
        })
        .collect();
    let jobs: String = domain
        .jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let steps = if i == 0 {
                let lines: String = job
                    .steps
                    .iter()
                    .map(|(at, name, message)| {
                        format!(
                            "<div>{} ▸ {}: {}</div>",
                            at.format("%H:%M:%S"),
                            escape(name),
                            escape(message)
                        )
                    })
                    .collect();
                let progress = job
                    .progress
                    .as_deref()
                    .map(|p| format!("<div>{}</div>", escape(p)))
                    .unwrap_or_default();
                format!("<div class=\"steps\">{lines}{progress}</div>")
            } else {
                String::new()
            };
            format!(
                "<tr class=\"job\"><td><a href=\"/jobs/{id}\">{kind}</a></td><td><span class=\"pill {state}\">{state}</span> {outcome}{steps}</td><td>{at}</td></tr>",
                id = escape(&job.id),
                kind = if job.kind.is_empty() { "job".to_owned() } else { escape(&job.kind) },
                state = escape(&job.state),
                outcome = escape(job.outcome.as_deref().unwrap_or("")),
                at = job.at.map(|t| t.format("%m-%d %H:%M:%S").to_string()).unwrap_or_default(),
            )
        })
        .collect();
    format!(
        "<div class=\"card domain\" id=\"{id}\"><h3><span class=\"name\">{name}</span><span class=\"version\">{version}</span></h3>\
<div>on {node}</div><table>{services}</table><h2>Jobs</h2><table>{jobs}</table></div>",
        id = card_id("domain", &domain.domain),
        name = escape(&domain.domain),
        node = escape(&domain.node),
    )
}

/// One line of the events log.
pub fn log_line(event: &Event) -> String {
    format!("<div>{}</div>", escape(&crate::render::watch_line(event)))
}

/// A job's history, replayed from the events stream.
pub fn job_page(job: &str, events: &[Event]) -> String {
    let rows: String = events
        .iter()
        .map(|e| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.at.format("%Y-%m-%d %H:%M:%S%.3f"),
                escape(e.kind.kind_str()),
                escape(&crate::render::job_line(e).unwrap_or_default()),
            )
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Job {job}</title><style>{STYLE}</style></head>\
<body><header><h1><a href=\"/\" style=\"color:#fff\">HostKit</a></h1><span>job {job}</span></header>\
<main><div class=\"card\"><table>{rows}</table></div></main></body></html>\n",
        job = escape(job),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_events_is_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(
            card_id("domain", "shop.example.com"),
            "domain-shop_example_com"
        );
    }
}
