//! A simulator seed sized for a benchmark: the default seed's parent account, API keys and
//! approved Primary Business Profile, plus `subaccounts` generated subaccounts holding
//! `products × numbers_per_product` numbers between them, spread round-robin so that every
//! binding's numbers come from several subaccounts (as a direct customer's would).

use trusthub_sim::{Secret, Seed, SeedAccount, SeedNumber};

/// One number a binding asks for: E.164 and the subaccount owning it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberRef {
    /// `+1555…`
    pub phone_number: String,
    /// `AC…` of the owning subaccount.
    pub subaccount_sid: String,
}

/// A generated seed and, for binding `b`, the numbers it assigns (`numbers[b]`).
#[derive(Clone, Debug)]
pub struct BenchSeed {
    /// The seed to start the simulator with.
    pub seed: Seed,
    /// `numbers[b]`: the numbers of binding `b`.
    pub numbers: Vec<Vec<NumberRef>>,
}

/// Subaccount `s`'s SID.
fn subaccount_sid(s: usize) -> String {
    format!("AC{:032x}", 0xb000_0000_u64 + s as u64)
}

/// Builds a seed with `products × numbers_per_product` numbers over `subaccounts` subaccounts.
pub fn bench_seed(products: usize, numbers_per_product: usize, subaccounts: usize) -> BenchSeed {
    let subaccounts = subaccounts.max(1);
    let mut seed = Seed::default_seed();
    seed.subaccounts = (0..subaccounts)
        .map(|s| SeedAccount {
            sid: subaccount_sid(s),
            auth_token: Secret::new(format!("benchsubaccounttoken{s:014}")),
            friendly_name: format!("Bench subaccount {s}"),
            numbers: Vec::new(),
            status: Default::default(),
        })
        .collect();
    let mut numbers = vec![Vec::with_capacity(numbers_per_product); products];
    for (b, wanted) in numbers.iter_mut().enumerate() {
        for j in 0..numbers_per_product {
            let i = b * numbers_per_product + j;
            let s = i % subaccounts;
            let phone_number = format!("+1555{i:07}");
            seed.subaccounts[s].numbers.push(SeedNumber::new(
                format!("PN{:032x}", 0xc000_0000_u64 + i as u64),
                phone_number.clone(),
            ));
            wanted.push(NumberRef {
                phone_number,
                subaccount_sid: subaccount_sid(s),
            });
        }
    }
    BenchSeed { seed, numbers }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_valid_and_spread_over_subaccounts() {
        let generated = bench_seed(7, 3, 4);
        generated.seed.validate().expect("valid seed");
        assert_eq!(generated.numbers.len(), 7);
        let total: usize = generated
            .seed
            .subaccounts
            .iter()
            .map(|a| a.numbers.len())
            .sum();
        assert_eq!(total, 21);
        let first: Vec<&str> = generated.numbers[0]
            .iter()
            .map(|n| n.subaccount_sid.as_str())
            .collect();
        assert_eq!(first.len(), 3);
        assert!(first[0] != first[1] && first[1] != first[2]);
    }
}
