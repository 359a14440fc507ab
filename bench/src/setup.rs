//! Where the benchmarks' inputs are: the release binaries, the arm64 bootstrap zips, the
//! functions' settings in cdk.json, and the machine's commands.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (as cargo puts it), else `target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The host release build of `name`.
pub(crate) fn release_binary(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

/// The zipped size of an arm64 bootstrap and, from the zip's own central directory, its
/// uncompressed size (a `bootstrap` file beside the zip may be from an older build).
pub(crate) fn zip_size(name: &str) -> Option<(u64, u64)> {
    let path = target_dir().join("lambda").join(name).join("bootstrap.zip");
    let bytes = std::fs::read(path).ok()?;
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // End of central directory record: signature 0x06054b50, central directory offset at +16.
    let eocd = (0..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(i) == Some(0x0605_4b50))?;
    let central = u32_at(eocd + 16)? as usize;
    // First central directory entry: signature 0x02014b50, uncompressed size at +24.
    if u32_at(central) != Some(0x0201_4b50) {
        return None;
    }
    Some((bytes.len() as u64, u64::from(u32_at(central + 24)?)))
}

pub(crate) fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// order-consumer's setting `key` in cdk.json (its block under `functions`).
pub(crate) fn consumer_setting(key: &str) -> f64 {
    function_setting("order-consumer", key).unwrap_or(0.0)
}

/// Function `function`'s setting `key` in cdk.json (its block under `functions`).
pub(crate) fn function_setting(function: &str, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(root().join("cdk.json")).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    json["context"]["functions"][function][key].as_f64()
}
