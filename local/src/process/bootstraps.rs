//! Where each function's bootstrap is: a cloud assembly's bundles, or a directory of host builds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::template::Template;
use crate::LocalError;

/// Where each function's bootstrap is and how to start it.
#[derive(Debug, Clone)]
pub struct Bootstraps {
    /// The bootstrap of each binary.
    pub by_binary: HashMap<String, PathBuf>,
    /// The program that runs a bootstrap, with its arguments (the bootstrap's path follows);
    /// empty to run it directly.
    pub launcher: Vec<String>,
}

impl Bootstraps {
    /// The bootstraps `cdk synth` bundled into the cloud assembly `assembly` (cdk.out): each
    /// function's code asset (`aws:asset:path`) holds a `bootstrap`. `launcher` runs them
    /// (`qemu-aarch64 -L /usr/aarch64-linux-gnu` for the arm64 builds on another machine).
    pub fn from_assembly(
        assembly: &Path,
        template: &Template,
        launcher: Vec<String>,
    ) -> Result<Self, LocalError> {
        let mut by_binary = HashMap::new();
        for (id, binary, r) in functions(template)? {
            let asset = r.metadata["aws:asset:path"].as_str().ok_or_else(|| {
                LocalError::Input(format!(
                    "function {id} has no aws:asset:path: is {} a cloud assembly synthesized with bundling?",
                    assembly.display()
                ))
            })?;
            let bootstrap = assembly.join(asset).join("bootstrap");
            if !bootstrap.is_file() {
                return Err(LocalError::Input(format!(
                    "{} is missing: run `npx cdk synth` (make synth) first",
                    bootstrap.display()
                )));
            }
            by_binary.insert(binary.to_string(), bootstrap);
        }
        Ok(Self {
            by_binary,
            launcher,
        })
    }

    /// The binaries in `dir` named as the template's functions name them (a host release build:
    /// `target/release`), run directly.
    pub fn from_dir(dir: &Path, template: &Template) -> Result<Self, LocalError> {
        let mut by_binary = HashMap::new();
        for (_, binary, _) in functions(template)? {
            let path = dir.join(binary);
            if !path.is_file() {
                return Err(LocalError::Input(format!(
                    "{} is missing: build it with `cargo build --release -p {binary}`",
                    path.display()
                )));
            }
            by_binary.insert(binary.to_string(), path);
        }
        Ok(Self {
            by_binary,
            launcher: Vec::new(),
        })
    }
}

/// Each function of `template` with its id and the binary it runs.
fn functions(
    template: &Template,
) -> Result<Vec<(&str, &str, &crate::template::Resource)>, LocalError> {
    template
        .of_type("AWS::Lambda::Function")
        .map(|(id, r)| {
            let binary = r.metadata[crate::resources::BINARY_METADATA]
                .as_str()
                .ok_or_else(|| LocalError::Input(format!("function {id} names no binary")))?;
            Ok((id, binary, r))
        })
        .collect()
}

/// Whether `path` is an arm64 (aarch64) ELF executable.
pub fn is_arm64_elf(path: &Path) -> bool {
    const EM_AARCH64: u16 = 183;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok()
        && header[..4] == *b"\x7fELF"
        && u16::from_le_bytes([header[18], header[19]]) == EM_AARCH64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects `--bootstraps DIR`: each of the template's functions is found by its binary's
    /// name in the directory, and a missing one is named with the command that builds it.
    #[test]
    fn bootstraps_from_a_directory_are_found_by_binary_name_and_a_missing_one_is_named() {
        let template: Template = serde_json::from_value(serde_json::json!({
            "Resources": {
                "ConsumerFunction": {
                    "Type": "AWS::Lambda::Function",
                    "Metadata": { crate::resources::BINARY_METADATA: "order-consumer" },
                    "Properties": {}
                },
                "ApiFunction": {
                    "Type": "AWS::Lambda::Function",
                    "Metadata": { crate::resources::BINARY_METADATA: "order-api" },
                    "Properties": {}
                }
            }
        }))
        .expect("a template");
        let dir = std::env::temp_dir().join(format!("bootstraps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("order-consumer"), b"").unwrap();
        let missing = Bootstraps::from_dir(&dir, &template).expect_err("order-api is missing");
        assert!(
            missing.to_string().contains("order-api")
                && missing
                    .to_string()
                    .contains("cargo build --release -p order-api"),
            "{missing}"
        );
        std::fs::write(dir.join("order-api"), b"").unwrap();
        let found = Bootstraps::from_dir(&dir, &template).expect("both binaries are there");
        assert_eq!(found.by_binary["order-api"], dir.join("order-api"));
        assert_eq!(
            found.by_binary["order-consumer"],
            dir.join("order-consumer")
        );
        assert!(found.launcher.is_empty(), "host binaries run directly");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
