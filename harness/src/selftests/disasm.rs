//! The text test_loader's `__xlated` is matched against: the kernel's BPF disassembler
//! (`kernel/bpf/disasm.c`, `print_bpf_insn()` with pointers shown) as the selftests'
//! `disasm_helpers.c` calls it: one `<index>: <insn>` line per instruction, without the
//! `(<code>) ` prefix, a helper or kfunc call without its `#<imm>` suffix, and a call of a
//! subprogram as `call pc<off>` (the offset `jit_subprogs()` keeps in `off`).

use anyhow::Context;
use regex::Regex;
use std::path::Path;

/// Helper names by `BPF_FUNC_*` id, from a tree's `include/uapi/linux/bpf.h` (`bpf_` + the name
/// in `___BPF_FUNC_MAPPER`).
pub fn helper_names(tree: &Path) -> anyhow::Result<Vec<String>> {
    let path = tree.join("include/uapi/linux/bpf.h");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(helper_names_in(&text))
}

fn helper_names_in(uapi: &str) -> Vec<String> {
    let entry = Regex::new(r"FN\(\s*(\w+)\s*,\s*(\d+)\s*,").expect("valid");
    let mut names: Vec<String> = Vec::new();
    for c in entry.captures_iter(uapi) {
        let id: usize = c[2].parse().unwrap_or(usize::MAX);
        if id < 4096 {
            if names.len() <= id {
                names.resize(id + 1, String::new());
            }
            names[id] = format!("bpf_{}", &c[1]);
        }
    }
    names
}

struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    fn of(raw: u64) -> Insn {
        let b = raw.to_le_bytes();
        Insn {
            code: b[0],
            dst: b[1] & 0xf,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

const ALU_OPS: [&str; 16] =
    ["+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian", "", ""];
const JMP_OPS: [&str; 16] =
    ["jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<=", "", ""];

fn size(code: u8) -> &'static str {
    ["u32", "u16", "u8", "u64"][usize::from((code >> 3) & 3)]
}

fn signed_size(code: u8) -> &'static str {
    ["s32", "s16", "s8", ""][usize::from((code >> 3) & 3)]
}

/// `%+d`.
fn signed(n: impl Into<i64>) -> String {
    format!("{:+}", n.into())
}

/// One instruction as `print_bpf_insn()` prints it (without the code prefix) and as
/// `disasm_insn()` then trims calls; `next` is the following instruction (for ld_imm64).
fn insn_text(insn: &Insn, next: Option<&Insn>, helpers: &[String]) -> String {
    let class = insn.code & 7;
    let op = usize::from(insn.code >> 4);
    let x = insn.code & 0x08 != 0;
    let (d, s) = (insn.dst, insn.src);
    match class {
        4 | 7 => {
            let r = if class == 4 { 'w' } else { 'r' };
            let sdiv = (op == 3 || op == 9) && insn.off == 1;
            let alu = if sdiv {
                if op == 3 {
                    "s/="
                } else {
                    "s%="
                }
            } else {
                ALU_OPS[op]
            };
            if op == 0xd {
                if class == 7 {
                    format!("r{d} = bswap{} r{d}", insn.imm)
                } else {
                    format!("r{d} = {}{} r{d}", if x { "be" } else { "le" }, insn.imm)
                }
            } else if op == 8 {
                format!("{r}{d} = -{r}{d}")
            } else if insn.code == 0xbf && insn.off == 1 {
                format!("r{d} = addr_space_cast(r{s}, {}, {})", (insn.imm as u32) >> 16, insn.imm as u16)
            } else if insn.code == 0xbf && insn.off == -1 {
                format!("r{d} = &(void __percpu *)(r{s})")
            } else if x {
                let movsx = match (op == 0xb, insn.off) {
                    (true, 8) => "(s8)",
                    (true, 16) => "(s16)",
                    (true, 32) => "(s32)",
                    _ => "",
                };
                format!("{r}{d} {alu} {movsx}{r}{s}")
            } else {
                format!("{r}{d} {alu} {}", insn.imm)
            }
        }
        3 => {
            let mode = insn.code & 0xe0;
            let sz = size(insn.code);
            let wide = if insn.code & 0x18 == 0x18 { "64" } else { "" };
            let imm = insn.imm;
            if mode == 0x60 {
                format!("*({sz} *)(r{d} {}) = r{s}", signed(insn.off))
            } else if mode == 0xc0 && matches!(imm, 0x00 | 0x50 | 0x40 | 0xa0) {
                format!("lock *({sz} *)(r{d} {}) {} r{s}", signed(insn.off), ALU_OPS[(imm >> 4) as usize])
            } else if mode == 0xc0 && matches!(imm, 0x01 | 0x51 | 0x41 | 0xa1) {
                let name = match imm >> 4 {
                    0x0 => "add",
                    0x5 => "and",
                    0x4 => "or",
                    _ => "xor",
                };
                format!("r{s} = atomic{wide}_fetch_{name}(({sz} *)(r{d} {}), r{s})", signed(insn.off))
            } else if mode == 0xc0 && imm == 0xf1 {
                format!("r0 = atomic{wide}_cmpxchg(({sz} *)(r{d} {}), r0, r{s})", signed(insn.off))
            } else if mode == 0xc0 && imm == 0xe1 {
                format!("r{s} = atomic{wide}_xchg(({sz} *)(r{d} {}), r{s})", signed(insn.off))
            } else {
                format!("BUG_{:02x}", insn.code)
            }
        }
        2 => match insn.code & 0xe0 {
            0x60 => format!("*({} *)(r{d} {}) = {}", size(insn.code), signed(insn.off), insn.imm),
            0xc0 => "nospec".into(),
            _ => format!("BUG_st_{:02x}", insn.code),
        },
        1 => match insn.code & 0xe0 {
            0x60 => format!("r{d} = *({} *)(r{s} {})", size(insn.code), signed(insn.off)),
            0x80 => format!("r{d} = *({} *)(r{s} {})", signed_size(insn.code), signed(insn.off)),
            _ => format!("BUG_ldx_{:02x}", insn.code),
        },
        0 => match (insn.code & 0xe0, insn.code & 0x18) {
            (0x20, _) => format!("r0 = *({} *)skb[{}]", size(insn.code), insn.imm),
            (0x40, _) => format!("r0 = *({} *)skb[r{s} + {}]", size(insn.code), insn.imm),
            (0x00, 0x18) => {
                let high = next.map_or(0, |n| n.imm as u32);
                let imm = (u64::from(high) << 32) | u64::from(insn.imm as u32);
                format!("r{d} = 0x{imm:x}")
            }
            _ => format!("BUG_ld_{:02x}", insn.code),
        },
        _ => {
            let r = if class == 6 { 'w' } else { 'r' };
            if op == 8 {
                match insn.src {
                    // BPF_PSEUDO_CALL: test_loader's callback prints the offset in `off`.
                    1 => format!("call pc{}", signed(insn.off)),
                    // BPF_PSEUDO_KFUNC_CALL.
                    2 => "call kernel-function".into(),
                    _ => match helpers.get(insn.imm as usize).filter(|n| !n.is_empty() && insn.imm >= 0) {
                        Some(name) => format!("call {name}"),
                        None => "call unknown".into(),
                    },
                }
            } else if insn.code == 0x05 {
                format!("goto pc{}", signed(insn.off))
            } else if insn.code == 0xe5 && insn.src == 0 {
                format!("may_goto pc{}", signed(insn.off))
            } else if insn.code == 0x06 {
                format!("gotol pc{}", signed(insn.imm))
            } else if insn.code == 0x95 {
                "exit".into()
            } else if x {
                format!("if {r}{d} {} {r}{s} goto pc{}", JMP_OPS[op], signed(insn.off))
            } else {
                format!("if {r}{d} {} 0x{:x} goto pc{}", JMP_OPS[op], insn.imm, signed(insn.off))
            }
        }
    }
}

/// The program as test_loader's `get_xlated_program_text()` writes it.
pub fn text(insns: &[u64], helpers: &[String]) -> String {
    let decoded: Vec<Insn> = insns.iter().map(|&raw| Insn::of(raw)).collect();
    let mut out = String::new();
    let mut i = 0;
    while i < decoded.len() {
        let insn = &decoded[i];
        out.push_str(&format!("{i}: {}\n", insn_text(insn, decoded.get(i + 1), helpers)));
        i += if insn.code == 0x18 { 2 } else { 1 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
        let mut b = [0u8; 8];
        b[0] = code;
        b[1] = dst | (src << 4);
        b[2..4].copy_from_slice(&off.to_le_bytes());
        b[4..8].copy_from_slice(&imm.to_le_bytes());
        u64::from_le_bytes(b)
    }

    #[test]
    fn instructions_read_as_the_kernel_disassembler_prints_them() {
        let helpers = helper_names_in("#define ___BPF_FUNC_MAPPER(FN, ctx...) \\\n\tFN(unspec, 0, ##ctx) \\\n\tFN(map_lookup_elem, 1, ##ctx) \\\n\tFN(get_smp_processor_id, 8, ##ctx)\n");
        assert_eq!(helpers[8], "bpf_get_smp_processor_id");
        let program = [
            raw(0xb7, 1, 0, 0, 1),      // r1 = 1
            raw(0x85, 0, 0, 0, 8),      // call bpf_get_smp_processor_id#8
            raw(0x18, 2, 1, 0, 0x1234), // r2 = map ptr (ld_imm64, two slots)
            raw(0x00, 0, 0, 0, 0x1),
            raw(0x7b, 10, 1, -8, 0),    // *(u64 *)(r10 -8) = r1
            raw(0x79, 0, 10, -8, 0),    // r0 = *(u64 *)(r10 -8)
            raw(0x3f, 0, 1, 1, 0),      // r0 s/= r1
            raw(0xbc, 3, 4, 8, 0),      // w3 = (s8)w4
            raw(0x15, 0, 0, 2, 0),      // if r0 == 0x0 goto pc+2
            raw(0x85, 0, 1, 3, 7),      // call pc+3 (subprog; index in imm)
            raw(0x85, 0, 2, 0, 12345),  // call kernel-function
            raw(0xdb, 1, 2, -16, 0x01), // r2 = atomic64_fetch_add((u64 *)(r1 -16), r2)
            raw(0x95, 0, 0, 0, 0),      // exit
        ];
        let text = text(&program, &helpers);
        assert_eq!(
            text,
            "0: r1 = 1\n1: call bpf_get_smp_processor_id\n2: r2 = 0x100001234\n4: *(u64 *)(r10 -8) = r1\n\
             5: r0 = *(u64 *)(r10 -8)\n6: r0 s/= r1\n7: w3 = (s8)w4\n8: if r0 == 0x0 goto pc+2\n9: call pc+3\n\
             10: call kernel-function\n11: r2 = atomic64_fetch_add((u64 *)(r1 -16), r2)\n12: exit\n"
        );
    }
}
