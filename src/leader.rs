//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! runs the controllers (and writes to Twilio).
//!
//! Every write of the Lease is a `replace` carrying the `resourceVersion` just read, so two
//! replicas racing for it cannot both win: the API server answers the slower one 409 Conflict.
//! (kube-lease-manager, which matches kube 5, takes a free Lease with server-side apply and
//! relies on field-ownership conflicts, and renews with strategic merge patches that carry no
//! resourceVersion; a `resourceVersion`-checked replace gives every step the same guarantee,
//! on a real API server and on the tests' local one alike.)
//!
//! - Free (no holder) or expired (`renewTime + leaseDurationSeconds` in the past): take it,
//!   setting `holderIdentity`, `acquireTime`, `renewTime` and incrementing `leaseTransitions`.
//! - Held by this replica: renew (`renewTime = now`) every `duration / 3`.
//! - Held by another replica and not expired: stand by and look again every `duration / 5`.
//! - The leader steps down when it has not renewed successfully for `2/3 · duration` (it
//!   cannot reach the API, or someone else holds the Lease): a standby takes over only after the
//!   full duration, so the two never run at once while their clocks agree within `duration / 3`.
//! - On shutdown the leader clears `holderIdentity`, so a standby takes over at its next look.
//!
//! Limits: expiry compares the Lease's wall-clock `renewTime` with the local clock (as
//! Kubernetes' own components do), so it assumes the replicas' clocks agree within the margin
//! above.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

use crate::server::Role;

/// Which Lease and who this replica is.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a Lease stays valid after its last renewal (whole seconds, at least 1).
    pub duration: Duration,
}

impl LeaseConfig {
    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// How often the leader renews.
    pub fn renew_period(&self) -> Duration {
        self.duration / 3
    }

    /// How often a standby looks at the Lease.
    pub fn retry_period(&self) -> Duration {
        self.duration / 5
    }

    /// How long the leader may go without a successful renewal before it steps down.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

/// Takes, renews and releases the Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(MicroTime(renewed)) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
    renewed
        .checked_add(SignedDuration::from_secs(seconds))
        .map_or(true, |until| until <= now)
}

impl LeaderElector {
    /// An elector for `config` through `client`.
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// One round: take or renew the Lease. `Ok(true)` when this replica holds it afterwards,
    /// `Ok(false)` when another one does (or won a race for it).
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let me = self.config.identity.as_str();
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.to_string()),
                    lease_duration_seconds: Some(self.config.duration_seconds()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.as_deref() == Some(me) {
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(self.config.duration_seconds());
        } else if holder.is_none() || expired(&spec, now) {
            spec.holder_identity = Some(me.to_string());
            spec.acquire_time = Some(MicroTime(now));
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(self.config.duration_seconds());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        } else {
            return Ok(false);
        }
        lease.spec = Some(spec);
        // `lease` keeps the resourceVersion just read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this replica holds it, so a standby need not wait for expiry.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs the election until `shutdown` resolves, publishing this replica's role on `role`
    /// (which starts at [`Role::Unknown`]); releases the Lease on the way out when holding it.
    pub async fn run(
        self,
        role: watch::Sender<Role>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut last_renewed: Option<Instant> = None;
        loop {
            // Measured before the request: the Lease's renewTime is no earlier than this.
            let attempt = Instant::now();
            let current = *role.borrow();
            let next = match self.try_acquire_or_renew().await {
                Ok(true) => {
                    last_renewed = Some(attempt);
                    Role::Leader
                }
                Ok(false) => {
                    last_renewed = None;
                    Role::Standby
                }
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.config.name, "cannot read or write the leader election Lease");
                    match (current, last_renewed) {
                        (Role::Leader, Some(at)) if at.elapsed() < self.config.renew_deadline() => {
                            Role::Leader
                        }
                        (Role::Leader, _) => Role::Standby,
                        (other, _) => other,
                    }
                }
            };
            if next != current {
                match next {
                    Role::Leader => {
                        tracing::info!(identity = %self.config.identity, lease = %self.config.name, "became the leader")
                    }
                    Role::Standby if current == Role::Leader => {
                        tracing::error!(identity = %self.config.identity, lease = %self.config.name, "lost the leader election Lease: stepping down")
                    }
                    _ => {
                        tracing::info!(identity = %self.config.identity, lease = %self.config.name, "standing by: another replica holds the Lease")
                    }
                }
                // Nobody listening only means the process is stopping.
                let _ = role.send(next);
            }
            let wait = if next == Role::Leader {
                self.config.renew_period()
            } else {
                self.config.retry_period()
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut shutdown => break,
            }
        }
        if *role.borrow() == Role::Leader {
            let _ = role.send(Role::Standby);
            if let Err(e) = self.release().await {
                tracing::warn!(error = %e, "cannot release the leader election Lease; it expires on its own");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        let renewed = Timestamp::now()
            .checked_sub(SignedDuration::from_secs(renewed_secs_ago))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        LeaseSpec {
            holder_identity: Some("a".into()),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_expires_after_its_duration_since_renewal() {
        let now = Timestamp::now();
        assert!(!expired(&spec(1, 15), now));
        assert!(expired(&spec(16, 15), now));
        assert!(expired(&LeaseSpec::default(), now));
    }

    #[test]
    fn periods_keep_the_leader_ahead_of_the_standby() {
        let config = LeaseConfig {
            name: "l".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            duration: Duration::from_secs(15),
        };
        assert_eq!(config.renew_period(), Duration::from_secs(5));
        assert_eq!(config.retry_period(), Duration::from_secs(3));
        assert!(config.renew_deadline() < config.duration);
        assert_eq!(config.duration_seconds(), 15);
    }
}
