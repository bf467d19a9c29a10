//! Reading a compiled selftest object: its programs from the ELF symbols, in libbpf's order,
//! and their annotations from the BTF decl tags `bpf_misc.h` writes.

use crate::selftests::annotations::{Annotations, Program};
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The programs of a compiled selftest object, in libbpf's order, with their annotations.
pub fn programs(object: &Path) -> anyhow::Result<Vec<Program>> {
    let bytes = std::fs::read(object).with_context(|| format!("reading {}", object.display()))?;
    let symbols = elf_programs(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", object.display()))?;
    let tags = decl_tags(object)?;
    symbols
        .into_iter()
        .map(|(section, name)| {
            let annotations = Annotations::parse(tags.get(&name).into_iter().flatten().map(String::as_str))
                .map_err(|e| anyhow::anyhow!("{}: program {name}: {e}", object.display()))?;
            Ok(Program { name, section, annotations })
        })
        .collect()
}

/// The undefined global symbols of a compiled object: its `__ksym` externs (kfuncs and kernel
/// variables) and other externs libbpf must resolve.
pub fn externs(object: &Path) -> anyhow::Result<Vec<String>> {
    use object::{Object, ObjectSymbol};
    let bytes = std::fs::read(object).with_context(|| format!("reading {}", object.display()))?;
    let file =
        object::File::parse(&*bytes).map_err(|e| anyhow::anyhow!("{}: not an ELF object: {e}", object.display()))?;
    Ok(file
        .symbols()
        .filter(|s| s.is_undefined() && s.is_global())
        .filter_map(|s| s.name().ok().map(str::to_string))
        .filter(|name| !name.is_empty())
        .collect())
}

/// Each function's decl tags (component -1: on the function itself), in BTF order, from
/// `bpftool -j btf dump file`.
fn decl_tags(object: &Path) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let sh = xshell::Shell::new()?;
    let bpftool = crate::host::prereq::bpftool()?;
    let out =
        xshell::cmd!(sh, "{bpftool} -j btf dump file {object}").ignore_status().output().context("running bpftool")?;
    anyhow::ensure!(
        out.status.success(),
        "bpftool btf dump file {} failed: {}",
        object.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    tags_from_btf_json(&String::from_utf8_lossy(&out.stdout))
}

#[derive(Deserialize)]
struct BtfDump {
    types: Vec<BtfType>,
}

#[derive(Deserialize)]
struct BtfType {
    id: u32,
    kind: String,
    name: String,
    #[serde(default)]
    type_id: u32,
    #[serde(default)]
    component_idx: i64,
}

fn tags_from_btf_json(json: &str) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let dump: BtfDump = serde_json::from_str(json).context("parsing bpftool's BTF JSON")?;
    let funcs: BTreeMap<u32, &str> =
        dump.types.iter().filter(|t| t.kind == "FUNC").map(|t| (t.id, t.name.as_str())).collect();
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &dump.types {
        if t.kind != "DECL_TAG" || t.component_idx != -1 {
            continue;
        }
        if let Some(func) = funcs.get(&t.type_id) {
            tags.entry(func.to_string()).or_default().push(t.name.clone());
        }
    }
    Ok(tags)
}

/// libbpf's programs in a BPF ELF object: every function symbol in an executable section other
/// than `.text` (whose functions are subprograms), as (section, name), by section then offset.
fn elf_programs(elf: &[u8]) -> Result<Vec<(String, String)>, String> {
    use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
    let file = object::File::parse(elf).map_err(|e| format!("not an ELF object: {e}"))?;
    let mut found = Vec::new();
    for symbol in file.symbols().filter(|s| s.kind() == SymbolKind::Text) {
        let Some(index) = symbol.section_index() else { continue };
        let section = file.section_by_index(index).map_err(|e| e.to_string())?;
        let section_name = section.name().map_err(|e| e.to_string())?;
        if section.kind() != SectionKind::Text || section_name == ".text" {
            continue;
        }
        let name = symbol.name().map_err(|e| e.to_string())?;
        found.push((index.0, symbol.address(), section_name.to_string(), name.to_string()));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, _, section, name)| (section, name)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decl_tags_are_grouped_by_function_in_btf_order() {
        let json = r#"{"types":[
            {"id":1,"kind":"FUNC","name":"prog","type_id":9,"linkage":"global"},
            {"id":2,"kind":"DECL_TAG","name":"comment:test_expect_failure","type_id":1,"component_idx":-1},
            {"id":3,"kind":"DECL_TAG","name":"comment:test_expect_msg=0=b","type_id":1,"component_idx":-1},
            {"id":4,"kind":"DECL_TAG","name":"arg tag","type_id":1,"component_idx":0},
            {"id":5,"kind":"DECL_TAG","name":"comment:test_expect_msg=1=a","type_id":1,"component_idx":-1},
            {"id":6,"kind":"VAR","name":"x","type_id":7,"linkage":"global"}]}"#;
        let tags = tags_from_btf_json(json).unwrap();
        assert_eq!(
            tags["prog"],
            ["comment:test_expect_failure", "comment:test_expect_msg=0=b", "comment:test_expect_msg=1=a"]
        );
    }

    #[test]
    fn programs_are_the_functions_of_executable_sections_other_than_text() {
        // A minimal ELF: null, .shstrtab, .text, ?tc, .symtab, .strtab.
        let shstr = b"\0.shstrtab\0.text\0?tc\0.symtab\0.strtab\0";
        let strtab = b"\0sub\0second\0first\0";
        let sym = |name: u32, info: u8, shndx: u16, value: u64| {
            let mut s = Vec::new();
            s.extend(name.to_le_bytes());
            s.push(info);
            s.push(0);
            s.extend(shndx.to_le_bytes());
            s.extend(value.to_le_bytes());
            s.extend(0u64.to_le_bytes());
            s
        };
        let symtab: Vec<u8> =
            [sym(0, 0, 0, 0), sym(1, 0x12, 2, 0), sym(5, 0x12, 3, 16), sym(12, 0x12, 3, 0), sym(5, 0x11, 3, 8)]
                .concat();
        let mut elf = vec![0u8; 64];
        // ELFCLASS64, little endian, version 1; ET_REL for EM_BPF, with a 64-byte header.
        elf[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1]);
        elf[0x10..0x12].copy_from_slice(&1u16.to_le_bytes());
        elf[0x12..0x14].copy_from_slice(&247u16.to_le_bytes());
        elf[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
        elf[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
        let mut data_at = Vec::new();
        // Each table 8-byte aligned, as a real object's are.
        let align = |elf: &mut Vec<u8>| elf.resize(elf.len().next_multiple_of(8), 0);
        for part in [&shstr[..], &symtab[..], &strtab[..]] {
            align(&mut elf);
            data_at.push(elf.len());
            elf.extend_from_slice(part);
        }
        align(&mut elf);
        let shoff = elf.len();
        let header = |name: u32, kind: u32, flags: u64, offset: usize, size: usize, link: u32| {
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&flags.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            h[0x28..0x2c].copy_from_slice(&link.to_le_bytes());
            h
        };
        for h in [
            header(0, 0, 0, 0, 0, 0),
            header(1, 3, 0, data_at[0], shstr.len(), 0),
            header(11, 1, 6, 0, 0, 0),
            header(17, 1, 6, 0, 0, 0),
            header(21, 2, 0, data_at[1], symtab.len(), 5),
            header(29, 3, 0, data_at[2], strtab.len(), 0),
        ] {
            elf.extend(h);
        }
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&6u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        let programs = elf_programs(&elf).unwrap();
        assert_eq!(programs, [("?tc".to_string(), "first".to_string()), ("?tc".into(), "second".into())]);
        assert!(elf_programs(b"not an elf").is_err());
    }
}
