//! Kernel options some selftest programs need and the project's base config leaves out: a
//! program that fails only for want of one is a skip naming the option, not a failure of the
//! variant (every variant shares the base config).

use crate::verdict::observed::ObservedProgram;
use bpfh_protocol::Verdict;

/// How a kernel without the option shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// The verifier rejects the load with this message.
    Rejected(&'static str),
    /// A test run of a program in this section fails with this errno.
    RunFails { section: &'static str, errno: i32 },
}

/// An option, and how its absence shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub option: &'static str,
    pub sign: Sign,
}

/// The options, from the kernel code that needs them.
pub const NEEDS: &[Needs] = &[
    // bpf_check_attach_target(): a sleepable fentry on a syscall, and fmod_ret, need the
    // function in the error-injection list (ALLOW_ERROR_INJECTION).
    Needs { option: "CONFIG_FUNCTION_ERROR_INJECTION", sign: Sign::Rejected("is not sleepable") },
    Needs { option: "CONFIG_FUNCTION_ERROR_INJECTION", sign: Sign::Rejected("is not modifiable") },
    // bpf_prog_test_run_skb(): an lwt_xmit test run needs the IPv6 stub.
    Needs { option: "CONFIG_IPV6", sign: Sign::RunFails { section: "lwt_xmit", errno: 95 } },
];

/// The entries of [`NEEDS`] whose option `dotconfig` (a `.config`'s text) does not enable.
pub fn lacking(dotconfig: &str) -> Vec<Needs> {
    let set = crate::kernel::kconfig::parse_dotconfig(dotconfig);
    NEEDS
        .iter()
        .filter(|n| !matches!(set.get(n.option), Some(crate::kernel::kconfig::OptionValue::Set(_))))
        .copied()
        .collect()
}

/// Why the observation shows a lacking option, if it does.
pub fn shown(lacking: &[Needs], section: &str, o: &ObservedProgram) -> Option<String> {
    lacking.iter().find_map(|n| {
        let evidence = match (n.sign, &o.verdict) {
            (Sign::Rejected(message), Some(Verdict::Rejected { log, .. })) if log.contains(message) => {
                let line = log.lines().find(|l| l.contains(message)).unwrap_or(message);
                format!("the verifier said {line:?}")
            }
            (Sign::RunFails { section: s, errno }, Some(Verdict::Accepted))
                if section.trim_start_matches('?').starts_with(s)
                    && o.ran.as_ref().and_then(|r| r.run_errno) == Some(errno) =>
            {
                format!("its test run failed with errno {errno}")
            }
            _ => return None,
        };
        Some(format!("needs {}, which this kernel's config leaves out: {evidence}", n.option))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::observed::Ran;

    #[test]
    fn a_lacking_option_is_named_only_when_it_shows() {
        let lacking = lacking("CONFIG_IPV6=y\n# CONFIG_FUNCTION_ERROR_INJECTION is not set\n");
        assert!(lacking.iter().all(|n| n.option == "CONFIG_FUNCTION_ERROR_INJECTION"), "{lacking:?}");
        let rejected = |log: &str| ObservedProgram {
            verdict: Some(Verdict::Rejected { errno: 22, log: log.into() }),
            ..ObservedProgram::default()
        };
        let why = shown(&lacking, "?fentry.s/__x64_sys_getpgid", &rejected("__x64_sys_getpgid is not sleepable\n"));
        assert!(why.unwrap().starts_with("needs CONFIG_FUNCTION_ERROR_INJECTION"));
        assert_eq!(shown(&lacking, "tc", &rejected("R1 invalid mem access\n")), None);
        let ran = ObservedProgram {
            verdict: Some(Verdict::Accepted),
            ran: Some(Ran { run_errno: Some(95), ..Ran::default() }),
            ..ObservedProgram::default()
        };
        assert_eq!(shown(&lacking, "lwt_xmit", &ran), None, "this kernel has CONFIG_IPV6");
        let without_ipv6 = super::lacking("");
        assert!(shown(&without_ipv6, "lwt_xmit", &ran).unwrap().contains("CONFIG_IPV6"));
    }
}
