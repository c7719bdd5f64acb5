//! A simulator seed sized for a benchmark: the default seed's parent account, API keys and
//! approved Primary Business Profile, plus `subaccounts` generated subaccounts holding
//! `products × numbers_per_product` numbers between them, spread round-robin so that every
//! binding's numbers come from several subaccounts (as a direct customer's would).
//!
//! The subaccounts and numbers come from the simulator's generator
//! ([`trusthub_sim::Seed::add_generated`]: linear, fast at 50,000 numbers); the default seed's
//! own subaccounts are left out, so that discovery over all subaccounts selects exactly the
//! generated numbers.

use trusthub_sim::seed::{generated_phone_number, generated_subaccount_sid};
use trusthub_sim::{Seed, SeedScale};

/// One number a binding asks for: E.164 and the subaccount owning it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberRef {
    /// `+1666…`
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
    /// Subaccounts generated (all active).
    pub subaccounts: usize,
}

impl BenchSeed {
    /// Numbers held by each generated subaccount, in subaccount order.
    pub fn numbers_per_subaccount(&self) -> Vec<usize> {
        self.seed
            .subaccounts
            .iter()
            .map(|a| a.numbers.len())
            .collect()
    }
}

/// Builds a seed with `products × numbers_per_product` numbers over `subaccounts` subaccounts:
/// number `i` (binding `i / k`) belongs to subaccount `i % subaccounts`.
pub fn bench_seed(products: usize, numbers_per_product: usize, subaccounts: usize) -> BenchSeed {
    let subaccounts = subaccounts.max(1);
    let total = products * numbers_per_product;
    let mut seed = Seed::default_seed();
    seed.subaccounts.clear();
    seed.add_generated(SeedScale {
        subaccounts,
        numbers: total,
        non_voice_every: 0,
    });
    let numbers = (0..products)
        .map(|b| {
            (b * numbers_per_product..(b + 1) * numbers_per_product)
                .map(|i| NumberRef {
                    phone_number: generated_phone_number(i),
                    subaccount_sid: generated_subaccount_sid(i % subaccounts),
                })
                .collect()
        })
        .collect();
    BenchSeed {
        seed,
        numbers,
        subaccounts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_valid_and_spread_over_subaccounts() {
        let generated = bench_seed(7, 3, 4);
        generated.seed.validate().expect("valid seed");
        assert_eq!(generated.numbers.len(), 7);
        let total: usize = generated.numbers_per_subaccount().iter().sum();
        assert_eq!(total, 21);
        assert_eq!(generated.numbers_per_subaccount(), vec![6, 5, 5, 5]);
        let first: Vec<&str> = generated.numbers[0]
            .iter()
            .map(|n| n.subaccount_sid.as_str())
            .collect();
        assert_eq!(first.len(), 3);
        assert!(first[0] != first[1] && first[1] != first[2]);
        // The binding's references name the numbers where the seed put them.
        let sub = generated
            .seed
            .subaccounts
            .iter()
            .find(|a| a.sid == generated.numbers[2][1].subaccount_sid)
            .expect("subaccount");
        assert!(
            sub.numbers
                .iter()
                .any(|n| n.phone_number == generated.numbers[2][1].phone_number)
        );
    }
}
