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
//! - Free (no holder) or expired: take it, setting `holderIdentity`, `acquireTime`,
//!   `renewTime` and incrementing `leaseTransitions`.
//! - Expired means: the Lease record has not changed for `leaseDurationSeconds` *as measured on
//!   this replica's monotonic clock since it first saw the record as it is now* (as client-go
//!   does). The holder's wall-clock `renewTime` is never compared with the local clock, so
//!   clock skew between nodes cannot make a standby take a Lease that is still being renewed.
//!   A replica that just started has seen nothing yet, so it waits a full duration.
//! - Held by this replica: renew (`renewTime = now`) every `duration / 3`.
//! - Held by another replica and not expired: stand by and look again every `duration / 5`.
//! - The leader steps down when it has not renewed successfully for `2/3 · duration`, measured
//!   from the start of its last successful renewal. Every round trip to the API is bounded by
//!   what is left of that deadline, so a hung request (an API server or network that stalls
//!   instead of failing) cannot keep a leader leading past it. A standby takes over only after
//!   it has seen the record unchanged for the full duration, which starts no earlier than that
//!   same renewal: the old leader has stepped down `duration / 3` before anyone can take over.
//! - On shutdown the leader clears `holderIdentity`, so a standby takes over at its next look.
//!
//! Stepping down is published on the role channel at once; the runtime then drops the
//! controllers (in-flight reconciles and their Twilio calls and retry waits included) rather
//! than waiting for them, and the process exits.
//!
//! Limits: the margin assumes the replicas' clocks *run* at about the same rate (not that they
//! agree), and that a Twilio request already sent when the leader steps down completes within
//! `duration / 3` (the request timeout bounds the rest).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
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

    /// The pause before the next round, for a replica now in `role` whose last successful
    /// renewal started `since_renewal` ago. A leader never sleeps past its renew deadline (a
    /// slow renewal leaves less than a renew period): its next round then starts with no
    /// budget left and steps down on time.
    fn wait_after(&self, role: Role, since_renewal: Option<Duration>) -> Duration {
        match (role, since_renewal) {
            (Role::Leader, Some(since)) => self
                .renew_period()
                .min(self.renew_deadline().saturating_sub(since)),
            (Role::Leader, None) => self.renew_period(),
            _ => self.retry_period(),
        }
    }
}

/// Takes, renews and releases the Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The Lease record as last read or written, and when (local monotonic clock) it was first
    /// seen as such: expiry is judged from this, never from the record's wall-clock times.
    observed: Mutex<Option<(LeaseSpec, Instant)>>,
}

/// Why a round of the election failed.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Api(kube::Error),
    #[error("no answer from the API server within {0:?}")]
    Timeout(Duration),
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Whether a record first seen as it is now at `observed_at` has expired at `now`: unchanged for
/// its `leaseDurationSeconds` on the local clock.
fn expired(spec: &LeaseSpec, observed_at: Instant, now: Instant) -> bool {
    let seconds = u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0);
    now.saturating_duration_since(observed_at) >= Duration::from_secs(seconds)
}

impl LeaderElector {
    /// An elector for `config` through `client`.
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: Mutex::new(None),
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
        let observed_at = self.observe(&spec);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.as_deref() == Some(me) {
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(self.config.duration_seconds());
        } else if holder.is_none() || expired(&spec, observed_at, Instant::now()) {
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
            Ok(written) => {
                self.observe(&written.spec.unwrap_or_default());
                Ok(true)
            }
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Notes `spec` as read or written now; returns when this replica first saw it as it is.
    fn observe(&self, spec: &LeaseSpec) -> Instant {
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        match observed.as_ref() {
            Some((seen, at)) if seen == spec => *at,
            _ => {
                let now = Instant::now();
                *observed = Some((spec.clone(), now));
                now
            }
        }
    }

    /// One round, bounded by `budget`: a request that has not answered by then counts as
    /// failed (the API server or the network may stall rather than fail).
    async fn round(&self, budget: Duration) -> Result<bool, RoundError> {
        match tokio::time::timeout(budget, self.try_acquire_or_renew()).await {
            Ok(result) => result.map_err(RoundError::Api),
            Err(_) => Err(RoundError::Timeout(budget)),
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
            // A leader's round must end before its renew deadline; anyone else's within one
            // duration (nothing depends on it, but the loop must not hang).
            let budget = match (current, last_renewed) {
                (Role::Leader, Some(at)) => {
                    self.config.renew_deadline().saturating_sub(at.elapsed())
                }
                _ => self.config.duration,
            };
            let next = match self.round(budget).await {
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
            let wait = self
                .config
                .wait_after(next, last_renewed.map(|at| at.elapsed()));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut shutdown => break,
            }
        }
        if *role.borrow() == Role::Leader {
            let _ = role.send(Role::Standby);
            // Bounded like every other round trip: a stalled API must not hold up the exit.
            match tokio::time::timeout(self.config.renew_deadline(), self.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot release the leader election Lease; it expires on its own")
                }
                Err(_) => {
                    tracing::warn!(
                        "no answer releasing the leader election Lease; it expires on its own"
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some("a".into()),
            // Far in the future: a holder's clock ahead of ours must not matter.
            renew_time: Some(MicroTime(
                Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_hours(1),
            )),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_expires_a_duration_after_this_replica_saw_it_change() {
        let seen = Instant::now();
        let later = |s| seen + Duration::from_secs(s);
        assert!(!expired(&spec(15), seen, later(1)));
        assert!(!expired(&spec(15), seen, later(14)));
        assert!(expired(&spec(15), seen, later(15)));
        assert!(expired(&LeaseSpec::default(), seen, seen));
    }

    #[test]
    fn expiry_ignores_the_holders_wall_clock() {
        // renewTime an hour behind (a holder whose clock lags, or a record read just now that
        // was renewed long ago by the holder's clock): still valid until seen unchanged for
        // the duration.
        let mut lagging = spec(15);
        lagging.renew_time = Some(MicroTime(
            Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(1),
        ));
        let seen = Instant::now();
        assert!(!expired(&lagging, seen, seen + Duration::from_secs(1)));
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
        let secs = Duration::from_secs;
        assert_eq!(config.wait_after(Role::Leader, Some(secs(0))), secs(5));
        // A renewal that took 8 s leaves 2 s to the 10 s deadline: no sleeping past it.
        assert_eq!(config.wait_after(Role::Leader, Some(secs(8))), secs(2));
        assert_eq!(config.wait_after(Role::Leader, Some(secs(12))), secs(0));
        assert_eq!(config.wait_after(Role::Standby, None), secs(3));
    }
}
