//! One owner per Trust Product: another object of the cluster that already records the product
//! keeps it, and this one gets a terminal condition naming it. Before a create, the SHAKEN/STIR
//! product Twilio may have attached to the profile by itself is looked for and adopted. A number
//! Twilio refuses because it is on another SHAKEN/STIR product is reported with that product and
//! its owner in the cluster, if any.

use std::collections::HashSet;

use kube::{Resource, ResourceExt};

use super::super::status::{StatusWriter, event};
use super::super::{Context, ReconcileError};
use crate::api::{ShakenStirTrustProduct, ShakenStirTrustProductStatus};
use crate::planner::ownership::{Claimant, owner_other_than_me, shaken_stir_product_in};
use crate::planner::text;
use crate::twilio::{BundleFilter, TrustHub, TrustProduct, TwilioError};

type Writer<'a> = StatusWriter<'a, ShakenStirTrustProduct, ShakenStirTrustProductStatus>;

fn claimant(obj: &ShakenStirTrustProduct, recorded: bool) -> Claimant<'_> {
    Claimant {
        namespace: obj.meta().namespace.as_deref().unwrap_or_default(),
        name: obj.meta().name.as_deref().unwrap_or_default(),
        created: obj.meta().creation_timestamp.as_ref().map(|t| t.0),
        recorded,
    }
}

/// The other objects of the cluster (informer cache, not being deleted) recording `sid`.
fn others_recording(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    sid: &str,
) -> Vec<std::sync::Arc<ShakenStirTrustProduct>> {
    let Some(store) = ctx.products.get() else {
        return Vec::new();
    };
    let me = obj.uid();
    store
        .state()
        .into_iter()
        .filter(|o| o.uid() != me && o.meta().deletion_timestamp.is_none())
        .filter(|o| {
            o.status
                .as_ref()
                .and_then(|s| s.trust_product_sid.as_deref())
                == Some(sid)
        })
        .collect()
}

/// Refuses Trust Product `sid` when another object owns it (`recorded`: this object's status
/// already names it). Checked in the informer cache, no Twilio call.
pub(super) fn check_product_unclaimed(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    sid: &str,
    recorded: bool,
) -> Result<(), ReconcileError> {
    let others = others_recording(obj, ctx, sid);
    let claims: Vec<Claimant<'_>> = others.iter().map(|o| claimant(o, true)).collect();
    match owner_other_than_me(&claimant(obj, recorded), &claims) {
        None => Ok(()),
        Some(owner) => Err(ReconcileError::terminal(
            "TrustProductInUse",
            format!(
                "Trust Product {sid} is already managed by ShakenStirTrustProduct {}/{}; a Trust Product has one owning object (delete this object, or point it at another product)",
                owner.namespace, owner.name
            ),
        )),
    }
}

/// The cluster's own products: the SIDs its objects recorded, and the friendly names they
/// create under (a product such an object is creating right now is not recorded yet). Read
/// once per listing: checking each listed product against the whole cache made a listing of
/// 1,000 products cost a million comparisons.
struct ClusterMade {
    sids: HashSet<String>,
    names: HashSet<String>,
}

impl ClusterMade {
    fn read(ctx: &Context) -> Self {
        let objects = ctx.products.get().map(|s| s.state()).unwrap_or_default();
        let sids = objects
            .iter()
            .filter_map(|o| o.status.as_ref()?.trust_product_sid.clone())
            .collect();
        let names = objects
            .iter()
            .map(|o| o.spec.friendly_name.clone())
            .collect();
        Self { sids, names }
    }

    /// Whether `product` is one of them.
    fn contains(&self, product: &TrustProduct) -> bool {
        product.sid.as_ref().is_some_and(|s| self.sids.contains(s))
            || product
                .friendly_name
                .as_ref()
                .is_some_and(|n| self.names.contains(n))
    }
}

/// The SHAKEN/STIR products (`policy_sid`) made outside the cluster (e.g. by Twilio, which adds
/// one to approved Primary Customer Profiles by itself) and attached to `profile_sid` by an
/// EntityAssignment, whatever their friendly name. One listing of the products; the entity
/// assignments are listed only for products the cluster did not make, so the cost does not grow
/// with the number of products the operator manages (nor does a product another object of the
/// cluster manages count: several objects may each manage a product of one profile). Only done
/// before a create, so about once per object; the listing keeps only the products the cluster
/// did not make, and creates that ask at once share one (see [`super::listings`]).
pub(super) async fn products_on_profile(
    ctx: &Context,
    twilio: &dyn TrustHub,
    (profile_sid, policy_sid): (&str, &str),
    since: std::time::Instant,
) -> Result<Vec<TrustProduct>, ReconcileError> {
    let filter = BundleFilter {
        policy_sid: Some(policy_sid.to_string()),
        ..Default::default()
    };
    let list = || async {
        let cluster_made = ClusterMade::read(ctx);
        let keep = move |p: &TrustProduct| !cluster_made.contains(p);
        twilio.list_trust_products_where(&filter, &keep).await
    };
    let products = ctx
        .product_listings
        .listed((twilio.account_sid(), policy_sid), since, list)
        .await
        .map_err(ReconcileError::twilio(
            "list the SHAKEN/STIR Trust Products",
        ))?;
    // Read again once listed: a product recorded since the listing started is the cluster's.
    let cluster_made = ClusterMade::read(ctx);
    let mut attached = Vec::new();
    for product in products.iter().cloned() {
        let Some(sid) = product.sid.as_deref() else {
            continue;
        };
        if cluster_made.contains(&product) {
            continue;
        }
        let on_profile = twilio
            .list_trust_product_entity_assignments(sid)
            .await
            .map_err(ReconcileError::twilio(
                "list a Trust Product's entity assignments",
            ))?
            .iter()
            .any(|a| a.object_sid.as_deref() == Some(profile_sid));
        if on_profile {
            attached.push(product);
        }
    }
    Ok(attached)
}

/// Records `product`, found attached to the profile, as this object's (adopted, never deleted),
/// with the reason in `status.adoption` and a Normal Event.
pub(super) async fn record_profile_adoption(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    writer: &mut Writer<'_>,
    product: &TrustProduct,
    profile_sid: &str,
) -> Result<(), ReconcileError> {
    let sid = product.sid.clone().unwrap_or_default();
    let note = format!(
        "Trust Product {sid} ({:?}) is the SHAKEN/STIR product already attached to Business Profile {profile_sid} (Twilio adds one to approved profiles); adopted instead of creating a second one",
        product.friendly_name.as_deref().unwrap_or_default()
    );
    let mut status = ShakenStirTrustProductStatus::clone(&writer.written);
    status.trust_product_sid = Some(sid);
    status.trust_product_created = false;
    status.create_pending_since = None;
    status.adoption = Some(text::bounded(note.as_str(), text::NUMBER_MESSAGE_MAX));
    writer.write(status).await?;
    event(
        ctx,
        obj,
        kube::runtime::events::EventType::Normal,
        "TrustProductAdopted",
        "CreateTrustProduct",
        note,
    )
    .await;
    Ok(())
}

/// The status message for a number Twilio refused to attach. When it is on another SHAKEN/STIR
/// product (20409), names that product and whether an object of the cluster owns it.
pub(super) fn refusal_message(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    e: &TwilioError,
) -> String {
    let rendered = e.to_string();
    let Some(other) = shaken_stir_product_in(&rendered).filter(|_| e.twilio_code() == Some(20409))
    else {
        return format!("Twilio refused to attach it: {rendered}");
    };
    let owner = others_recording(obj, ctx, other)
        .first()
        .map(|o| {
            format!(
                "owned by ShakenStirTrustProduct {}/{}",
                o.namespace().unwrap_or_default(),
                o.name_any()
            )
        })
        .unwrap_or_else(|| "no object in this cluster owns it".to_string());
    format!(
        "already on SHAKEN/STIR Trust Product {other} ({owner}); a number can be on one SHAKEN/STIR product only: detach it there first [{rendered}]",
    )
}
