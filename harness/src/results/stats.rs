//! Statistics for wall-clock samples: medians, percentile-bootstrap confidence intervals and the
//! Mann-Whitney U test. Timing samples are skewed and few, so everything here is rank- or
//! resampling-based; nothing assumes normality. The bootstrap is seeded, so a report computed
//! twice from the same samples prints the same interval.

/// Confidence level of every interval the harness reports.
pub const LEVEL: f64 = 0.95;
/// A difference with a two-sided p-value below this is reported as significant.
pub const ALPHA: f64 = 0.05;
/// Bootstrap resamples: enough for stable 2.5%/97.5% percentiles of small samples.
pub const RESAMPLES: usize = 10_000;
/// Fixed so that the same samples always give the same interval.
pub const SEED: u64 = 0x6270_665f_6861_726e;

pub fn median(xs: &[f64]) -> Option<f64> {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    median_sorted(&sorted)
}

fn median_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Linear interpolation between closest ranks (numpy's default percentile).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

fn resample_median(xs: &[f64], rng: &mut fastrand::Rng, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend((0..xs.len()).map(|_| xs[rng.usize(..xs.len())]));
    buf.sort_by(f64::total_cmp);
    median_sorted(buf).expect("resample of a non-empty sample")
}

fn percentile_interval(mut stats: Vec<f64>, level: f64) -> Interval {
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Interval { lo: quantile_sorted(&stats, tail), hi: quantile_sorted(&stats, 1.0 - tail) }
}

/// Percentile-bootstrap interval of the median of `xs`.
pub fn bootstrap_median_ci(xs: &[f64], level: f64, resamples: usize, seed: u64) -> Option<Interval> {
    if xs.is_empty() {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut buf = Vec::with_capacity(xs.len());
    let stats = (0..resamples).map(|_| resample_median(xs, &mut rng, &mut buf)).collect();
    Some(percentile_interval(stats, level))
}

/// Percentile-bootstrap interval of `median(b) - median(a)`, resampling each group on its own.
pub fn bootstrap_median_difference_ci(
    a: &[f64],
    b: &[f64],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut buf = Vec::with_capacity(a.len().max(b.len()));
    let stats = (0..resamples)
        .map(|_| {
            let ma = resample_median(a, &mut rng, &mut buf);
            resample_median(b, &mut rng, &mut buf) - ma
        })
        .collect();
    Some(percentile_interval(stats, level))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: pairs (x from a, y from b) with x > y, ties counting one half.
    pub u: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Whether `p` comes from the exact null distribution (small samples, no ties) rather than
    /// the normal approximation.
    pub exact: bool,
}

/// Up to this size of the smaller sample, and without ties, the exact distribution is used
/// (scipy.stats.mannwhitneyu's `method="auto"`, so its results can be checked against it).
const EXACT_UP_TO: usize = 8;

/// Two-sided Mann-Whitney U test of `a` against `b`. None if either sample is empty.
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut all: Vec<(f64, usize)> = a.iter().map(|&x| (x, 0)).chain(b.iter().map(|&y| (y, 1))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Midranks, and the tie term sum(t^3 - t) for the variance correction.
    let n = all.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        rank_sum_a += all[i..=j].iter().filter(|(_, g)| *g == 0).count() as f64 * rank;
        i = j + 1;
    }
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u = rank_sum_a - f1 * (f1 + 1.0) / 2.0;
    let mean = f1 * f2 / 2.0;
    if tie_term == 0.0 && n1.min(n2) <= EXACT_UP_TO {
        // P(U >= max(u, n1 n2 - u)), doubled: the distribution is symmetric.
        let big = u.max(f1 * f2 - u) as usize;
        let counts = u_distribution(n1, n2);
        let total: f64 = counts.iter().sum();
        let upper: f64 = counts[big..].iter().sum();
        return Some(MannWhitney { u, p: (2.0 * upper / total).min(1.0), exact: true });
    }
    let n = f1 + f2;
    let variance = f1 * f2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance == 0.0 {
        // Every value is the same: no evidence of any difference.
        return Some(MannWhitney { u, p: 1.0, exact: false });
    }
    // Continuity correction, towards the mean.
    let z = ((u - mean).abs() - 0.5).max(0.0) / variance.sqrt();
    Some(MannWhitney { u, p: (2.0 * normal_sf(z)).min(1.0), exact: false })
}

/// Number of arrangements of n1 + n2 distinct values giving each U = 0..=n1*n2, by the
/// recurrence f(n1, n2, u) = f(n1 - 1, n2, u - n2) + f(n1, n2 - 1, u).
fn u_distribution(n1: usize, n2: usize) -> Vec<f64> {
    // table[j][u] for the current i (number of values from the first sample).
    let max_u = n1 * n2;
    let mut prev: Vec<Vec<f64>> = (0..=n2).map(|_| one_hot(max_u)).collect();
    for _ in 1..=n1 {
        let mut cur: Vec<Vec<f64>> = vec![one_hot(max_u)];
        for j in 1..=n2 {
            let row: Vec<f64> =
                (0..=max_u).map(|u| cur[j - 1][u] + if u >= j { prev[j][u - j] } else { 0.0 }).collect();
            cur.push(row);
        }
        prev = cur;
    }
    prev.pop().expect("n2 + 1 rows")
}

fn one_hot(max_u: usize) -> Vec<f64> {
    let mut v = vec![0.0; max_u + 1];
    v[0] = 1.0;
    v
}

/// Upper tail of the standard normal distribution.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7:
/// far below anything a p-value is read to).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Summary of one variant's wall-clock samples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    pub median: f64,
    pub ci: Interval,
    pub n: usize,
}

pub fn estimate(samples: &[u64]) -> Option<Estimate> {
    let xs: Vec<f64> = samples.iter().map(|&s| s as f64).collect();
    Some(Estimate { median: median(&xs)?, ci: bootstrap_median_ci(&xs, LEVEL, RESAMPLES, SEED)?, n: xs.len() })
}

/// How a variant's samples differ from the baseline's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difference {
    /// median(other) - median(base).
    pub delta: f64,
    /// `delta` relative to the baseline median (None when that is 0).
    pub relative: Option<f64>,
    /// Bootstrap interval of `delta`.
    pub ci: Interval,
    pub p: f64,
    /// p < ALPHA: the difference is unlikely to be noise.
    pub significant: bool,
}

pub fn difference(base: &[u64], other: &[u64]) -> Option<Difference> {
    let a: Vec<f64> = base.iter().map(|&s| s as f64).collect();
    let b: Vec<f64> = other.iter().map(|&s| s as f64).collect();
    let (ma, mb) = (median(&a)?, median(&b)?);
    let ci = bootstrap_median_difference_ci(&a, &b, LEVEL, RESAMPLES, SEED)?;
    let p = mann_whitney_u(&a, &b)?.p;
    let delta = mb - ma;
    Some(Difference { delta, relative: (ma != 0.0).then(|| delta / ma), ci, p, significant: p < ALPHA })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn medians_and_quantiles() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile_sorted(&s, 0.25), 2.0);
        assert_eq!(quantile_sorted(&s, 0.1), 1.4);
    }

    #[test]
    fn normal_tail_matches_tables() {
        // Standard normal table values.
        assert!(close(normal_sf(0.0), 0.5, 1e-7));
        assert!(close(normal_sf(1.959_964), 0.025, 1e-6));
        assert!(close(normal_sf(1.0), 0.158_655_25, 1e-6));
        assert!(close(normal_sf(-2.575_829), 0.995, 1e-6));
        assert!(close(normal_sf(3.0), 0.001_349_898, 1e-7));
    }

    #[test]
    fn mann_whitney_exact_known_answers() {
        // Complete separation of 3 and 3: U = 0, P = 2 / C(6,3) = 0.1.
        let r = mann_whitney_u(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!(r.exact);
        assert_eq!(r.u, 0.0);
        assert!(close(r.p, 0.1, 1e-12));
        // scipy.stats.mannwhitneyu's documented example: U = 17, exact p = 1/9.
        let males = [19.0, 22.0, 16.0, 29.0, 24.0];
        let females = [20.0, 11.0, 17.0, 12.0];
        let r = mann_whitney_u(&males, &females).unwrap();
        assert_eq!(r.u, 17.0);
        assert!(close(r.p, 0.111_111_111, 1e-9), "{r:?}");
        // 8 against 8 is still exact, as in scipy: complete separation, p = 2 / C(16,8).
        let low: Vec<f64> = (0..8).map(f64::from).collect();
        let high: Vec<f64> = (8..16).map(f64::from).collect();
        let r = mann_whitney_u(&low, &high).unwrap();
        assert!(r.exact, "{r:?}");
        assert!(close(r.p, 2.0 / 12_870.0, 1e-12), "{r:?}");
        assert!(
            !mann_whitney_u(&[low.clone(), vec![20.0]].concat(), &[high.clone(), vec![21.0]].concat()).unwrap().exact
        );
        // Identical interleaving: no evidence at all.
        let r = mann_whitney_u(&[1.0, 4.0], &[2.0, 3.0]).unwrap();
        assert!(close(r.p, 1.0, 1e-12), "{r:?}");
    }

    #[test]
    fn exact_distribution_matches_enumeration() {
        // Count U over every way to pick which 3 of 7 distinct ranks belong to the first sample.
        let (n1, n2) = (3usize, 4usize);
        let mut counts = vec![0.0; n1 * n2 + 1];
        for mask in 0u32..(1 << (n1 + n2)) {
            if mask.count_ones() as usize != n1 {
                continue;
            }
            let a: Vec<usize> = (0..n1 + n2).filter(|i| mask & (1 << i) != 0).collect();
            let b: Vec<usize> = (0..n1 + n2).filter(|i| mask & (1 << i) == 0).collect();
            let u = a.iter().map(|x| b.iter().filter(|y| x > y).count()).sum::<usize>();
            counts[u] += 1.0;
        }
        assert_eq!(u_distribution(n1, n2), counts);
    }

    #[test]
    fn mann_whitney_normal_approximation_with_ties() {
        // By hand: [1,2,2,3] against [3,4,5,6]; the only non-win is the 3-3 tie, so U = 0.5; two
        // tied pairs give a tie term of 2 * (2^3 - 2) = 12, variance = 16/12 * (9 - 12/56), and
        // the continuity-corrected z = (8 - 0.5 - 0.5) / sqrt(variance) = 2.0452: p = 0.04083.
        let r = mann_whitney_u(&[1.0, 2.0, 2.0, 3.0], &[3.0, 4.0, 5.0, 6.0]).unwrap();
        assert!(!r.exact);
        assert_eq!(r.u, 0.5);
        assert!(close(r.p, 0.040_83, 1e-4), "{r:?}");
        // Large samples use the approximation even without ties.
        let a: Vec<f64> = (0..20).map(f64::from).collect();
        let b: Vec<f64> = (0..20).map(|x| f64::from(x) + 100.0).collect();
        let r = mann_whitney_u(&a, &b).unwrap();
        assert!(!r.exact && r.p < 1e-6, "{r:?}");
        let same = [7.0; 6];
        assert_eq!(mann_whitney_u(&same, &same).unwrap().p, 1.0);
    }

    /// Seeded standard normal variates (Box-Muller).
    fn normals(rng: &mut fastrand::Rng, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let (u1, u2) = (1.0 - rng.f64(), rng.f64());
                mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            })
            .collect()
    }

    #[test]
    fn bootstrap_interval_covers_the_true_median_about_95_percent_of_the_time() {
        let mut rng = fastrand::Rng::with_seed(1);
        let trials = 400;
        let covered = (0..trials)
            .filter(|&t| {
                let xs = normals(&mut rng, 25, 1000.0, 50.0);
                bootstrap_median_ci(&xs, LEVEL, 1000, t).unwrap().contains(1000.0)
            })
            .count();
        let coverage = covered as f64 / trials as f64;
        // The percentile bootstrap of a median is slightly liberal at n = 25; 400 trials give a
        // binomial standard error of about 1.1 points.
        assert!((0.88..=0.99).contains(&coverage), "coverage {coverage}");
    }

    #[test]
    fn mann_whitney_false_positive_rate_is_alpha_and_a_real_shift_is_found() {
        let mut rng = fastrand::Rng::with_seed(2);
        let trials = 1000;
        let false_positives = (0..trials)
            .filter(|_| {
                let (a, b) = (normals(&mut rng, 15, 0.0, 1.0), normals(&mut rng, 15, 0.0, 1.0));
                mann_whitney_u(&a, &b).unwrap().p < ALPHA
            })
            .count();
        let rate = false_positives as f64 / trials as f64;
        assert!((0.025..=0.075).contains(&rate), "type I error rate {rate}");
        // A shift of 1.5 standard deviations at n = 15: power is above 95%.
        let found = (0..200)
            .filter(|_| {
                let (a, b) = (normals(&mut rng, 15, 0.0, 1.0), normals(&mut rng, 15, 1.5, 1.0));
                mann_whitney_u(&a, &b).unwrap().p < ALPHA
            })
            .count();
        assert!(found >= 180, "found the shift {found} times of 200");
    }

    #[test]
    fn differences_are_reproducible_and_noise_is_not_significant() {
        let mut rng = fastrand::Rng::with_seed(3);
        let base: Vec<u64> = normals(&mut rng, 15, 1000.0, 20.0).iter().map(|x| x.round() as u64).collect();
        let slower: Vec<u64> = base.iter().map(|x| x + 100).collect();
        let d = difference(&base, &slower).unwrap();
        assert!(d.significant && close(d.delta, 100.0, 1e-9), "{d:?}");
        assert!(d.ci.contains(100.0), "{d:?}");
        assert_eq!(difference(&base, &slower), Some(d), "the seeded bootstrap repeats itself");
        let noise: Vec<u64> = normals(&mut rng, 15, 1000.0, 20.0).iter().map(|x| x.round() as u64).collect();
        let d = difference(&base, &noise).unwrap();
        assert!(!d.significant && d.ci.contains(0.0), "{d:?}");
        assert!(difference(&[], &base).is_none());
    }
}
