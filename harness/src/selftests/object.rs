//! Reading a compiled selftest object: its programs from the ELF symbols, in libbpf's order,
//! and their annotations from the BTF decl tags `bpf_misc.h` writes.

use crate::selftests::annotations::{Annotations, Program};
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

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

/// Each function's decl tags (component -1: on the function itself), in BTF order, from
/// `bpftool -j btf dump file`.
fn decl_tags(object: &Path) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let out =
        Command::new("bpftool").args(["-j", "btf", "dump", "file"]).arg(object).output().context("running bpftool")?;
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
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or("truncated ELF");
    let u32_at = |o: usize| elf.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).ok_or("truncated ELF");
    let u64_at = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).ok_or("truncated ELF");
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return Err("not a 64-bit little-endian ELF object".into());
    }
    let shoff = u64_at(0x28)? as usize;
    let (shentsize, shnum, shstrndx) = (u16_at(0x3a)? as usize, u16_at(0x3c)? as usize, u16_at(0x3e)? as usize);
    struct Section {
        name: u32,
        kind: u32,
        flags: u64,
        offset: usize,
        size: usize,
        link: usize,
    }
    let sections = (0..shnum)
        .map(|i| {
            let h = shoff + i * shentsize;
            Ok(Section {
                name: u32_at(h)?,
                kind: u32_at(h + 4)?,
                flags: u64_at(h + 8)?,
                offset: u64_at(h + 0x18)? as usize,
                size: u64_at(h + 0x20)? as usize,
                link: u32_at(h + 0x28)? as usize,
            })
        })
        .collect::<Result<Vec<_>, &str>>()?;
    let string = |table: &Section, at: u32| -> Result<String, String> {
        let start = table.offset + at as usize;
        let bytes = elf.get(start..table.offset + table.size).ok_or("string out of range")?;
        let end = bytes.iter().position(|&b| b == 0).ok_or("unterminated string")?;
        Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
    };
    let shstr = sections.get(shstrndx).ok_or("no section name table")?;
    const SHT_SYMTAB: u32 = 2;
    const SHF_EXECINSTR: u64 = 4;
    const STT_FUNC: u8 = 2;
    let symtab = sections.iter().find(|s| s.kind == SHT_SYMTAB).ok_or("no symbol table")?;
    let strtab = sections.get(symtab.link).ok_or("no symbol string table")?;
    let mut found = Vec::new();
    for at in (symtab.offset..symtab.offset + symtab.size).step_by(24) {
        let info = *elf.get(at + 4).ok_or("truncated symbol")?;
        let shndx = u16_at(at + 6)? as usize;
        if info & 0xf != STT_FUNC {
            continue;
        }
        let Some(section) = sections.get(shndx) else { continue };
        let section_name = string(shstr, section.name)?;
        if section.flags & SHF_EXECINSTR == 0 || section_name == ".text" {
            continue;
        }
        found.push((shndx, u64_at(at + 8)?, section_name, string(strtab, u32_at(at)?)?));
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
        elf[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        let mut data_at = Vec::new();
        for part in [&shstr[..], &symtab[..], &strtab[..]] {
            data_at.push(elf.len());
            elf.extend_from_slice(part);
        }
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
