//! `cru list`: printing the references found, as text or JSON lines.

use std::io::{self, Write};

use serde::Serialize;

use crate::inventory::Inventory;

/// How `list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `path:reference` lines, sorted and de-duplicated per file.
    #[default]
    Text,
    /// One JSON object per occurrence.
    Json,
}

/// Options of `cru list`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListOptions {
    /// Output format.
    pub format: Format,
    /// Leave the file name out of text output.
    pub no_filename: bool,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    reference: String,
    name: String,
    registry: String,
    repository: String,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
    /// Where each part of a split reference is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    parts: Vec<JsonPart>,
}

#[derive(Serialize)]
struct JsonPart {
    role: &'static str,
    line: usize,
    column: usize,
}

/// Writes the references of `inventory` to `out`.
pub fn write(inventory: &Inventory, options: ListOptions, out: &mut dyn Write) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    for file in &inventory.files {
        let path = &file.shown;
        match options.format {
            Format::Text => {
                let mut refs: Vec<String> = file
                    .refs
                    .iter()
                    .map(|r| r.occurrence.reference.to_string())
                    .collect();
                refs.sort_unstable();
                refs.dedup();
                for r in refs {
                    if options.no_filename {
                        writeln!(out, "{r}")?;
                    } else {
                        writeln!(out, "{path}:{r}")?;
                    }
                }
            }
            Format::Json => {
                for located in &file.refs {
                    let r = &located.occurrence.reference;
                    let line = JsonLine {
                        file: path,
                        line: located.line,
                        column: located.column,
                        reference: r.to_string(),
                        name: r.normalized_name(),
                        registry: r.registry(),
                        repository: r.repository(),
                        tag: r.tag(),
                        digest: r.digest(),
                        parts: located
                            .parts
                            .iter()
                            .map(|p| JsonPart {
                                role: p.role.as_str(),
                                line: p.line,
                                column: p.column,
                            })
                            .collect(),
                    };
                    serde_json::to_writer(&mut out, &line)?;
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    out.flush()
}
