//! What a Trust Product reconcile reads before it plans: the profile and numbers (from the
//! binding or the spec), whether each number is really on the profile, and which Trust Product
//! is this object's (creating it only after a look-up found none).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use super::super::book::Abridge;
use super::super::status::StatusWriter;
use super::super::{Context, ReconcileError};
use crate::api::{
    BusinessProfileBinding, BusinessProfileBindingStatus, NumberOrSid, NumberState,
    PhoneNumberAssignmentStatus, ShakenStirTrustProduct, ShakenStirTrustProductStatus, Sid,
};
use crate::planner::text;
use crate::planner::trust_product::{Identity, IdentityInputs, decide_identity};
use crate::twilio::{BundleFilter, CreateTrustProduct, TrustHub, TrustProduct};

/// The profile and numbers a product must be attached to.
#[derive(Clone, Debug, Default)]
pub(super) struct Source {
    /// `BU…` of the Business Profile.
    pub profile_sid: String,
    /// `PN…` → E.164 (when known), the numbers to attach.
    pub numbers: BTreeMap<Sid, Option<Sid>>,
    /// Whether a binding vouches that every number is assigned to the profile (its status says
    /// `Assigned`, from its own look-up of the profile's assignments). Numbers named directly in
    /// the spec are checked against Trust Hub instead.
    pub vouched_by_binding: bool,
}

/// Reads the profile and numbers from the referenced binding, or from the spec.
pub(super) async fn source(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
) -> Result<Source, ReconcileError> {
    let spec = &obj.spec;
    let Some(binding_ref) = &spec.business_profile_binding_ref else {
        let numbers = spec
            .phone_numbers
            .iter()
            .flatten()
            .map(|n| (Sid::from(n.0.as_str()), None))
            .collect();
        return Ok(Source {
            profile_sid: spec.business_profile_sid.clone().unwrap_or_default(),
            numbers,
            vouched_by_binding: false,
        });
    };
    let ns = obj.namespace().unwrap_or_default();
    // From the binding cache, which is at least as new as the binding change that woke this
    // reconcile (see `run_with`); from the API server when the cache does not have it (not
    // listed yet at startup, or the binding really is missing).
    let cached = ctx.bindings.get().and_then(|store| {
        store.get(&ObjectRef::<BusinessProfileBinding>::new(&binding_ref.name).within(&ns))
    });
    let binding = match cached {
        Some(binding) => Some(binding),
        None => {
            let api: Api<BusinessProfileBinding> = Api::namespaced(ctx.client.clone(), &ns);
            api.get_opt(&binding_ref.name).await?.map(Arc::new)
        }
    };
    let Some(binding) = binding else {
        return Err(ReconcileError::terminal(
            "BindingNotFound",
            format!(
                "BusinessProfileBinding {ns}/{} does not exist",
                binding_ref.name
            ),
        ));
    };
    // The binding's full record of its numbers, which its status holds only up to a few
    // hundred numbers.
    let status = ctx
        .books
        .bindings
        .recall_ref(binding.metadata.uid.as_deref(), binding.status.as_ref());
    if status.is_abridged() {
        return Err(ReconcileError::Recalling {
            reason: "WaitingForBinding",
            message: format!(
                "BusinessProfileBinding {} has more numbers than its status lists; waiting for this operator to read them again from Trust Hub",
                binding_ref.name
            ),
        });
    }
    let Some(profile) = status.business_profile.clone() else {
        return Err(ReconcileError::waiting(
            "WaitingForBinding",
            format!(
                "BusinessProfileBinding {} has not resolved its Business Profile yet",
                binding_ref.name
            ),
        ));
    };
    let (numbers, pending) =
        numbers_from_binding(spec.phone_numbers.as_deref(), &binding, &status)?;
    if !pending.is_empty() {
        return Err(ReconcileError::waiting(
            "WaitingForBinding",
            format!(
                "waiting for BusinessProfileBinding {} to assign: {}",
                binding_ref.name,
                text::listed(&pending, ", ")
            ),
        ));
    }
    Ok(Source {
        profile_sid: profile.sid,
        numbers,
        vouched_by_binding: true,
    })
}

/// `PN…` → E.164 of the numbers taken, and the numbers still waiting to be assigned.
type TakenNumbers = (BTreeMap<Sid, Option<Sid>>, Vec<String>);

/// The numbers a product takes from its binding's record: all it assigned, or the `subset` the
/// product names; and those still waiting to be assigned. A named number the binding does not
/// have is a terminal error.
fn numbers_from_binding(
    subset: Option<&[NumberOrSid]>,
    binding: &BusinessProfileBinding,
    status: &BusinessProfileBindingStatus,
) -> Result<TakenNumbers, ReconcileError> {
    let mut numbers = BTreeMap::new();
    let mut pending = Vec::new();
    let binding_name = binding.metadata.name.as_deref().unwrap_or_default();
    match subset {
        None => {
            for n in &status.phone_numbers {
                match (&n.sid, n.state) {
                    (Some(sid), NumberState::Assigned) => {
                        numbers.insert(sid.clone(), n.phone_number.clone());
                    }
                    (_, NumberState::Releasing) => {}
                    _ => pending.push(
                        n.phone_number
                            .as_deref()
                            .or(n.sid.as_deref())
                            .unwrap_or_default()
                            .to_string(),
                    ),
                }
            }
            if status.phone_numbers.is_empty() {
                pending.push("(no numbers resolved yet)".into());
            }
        }
        Some(subset) => {
            // By SID and by E.164, so each wanted number is one look-up, not one scan.
            let mut by_key: HashMap<&str, &PhoneNumberAssignmentStatus> = HashMap::new();
            for n in &status.phone_numbers {
                for key in [n.sid.as_deref(), n.phone_number.as_deref()]
                    .into_iter()
                    .flatten()
                {
                    by_key.entry(key).or_insert(n);
                }
            }
            for wanted in subset {
                let entry = by_key.get(wanted.0.as_str()).copied();
                match entry {
                    Some(n) if n.state == NumberState::Assigned && n.sid.is_some() => {
                        numbers.insert(n.sid.clone().unwrap_or_default(), n.phone_number.clone());
                    }
                    Some(_) => pending.push(wanted.0.clone()),
                    None if binding.spec.phone_numbers.iter().any(|r| {
                        r.sid.as_deref() == Some(&wanted.0)
                            || r.phone_number.as_deref() == Some(&wanted.0)
                    }) =>
                    {
                        pending.push(wanted.0.clone())
                    }
                    None => {
                        return Err(ReconcileError::terminal(
                            "NumberNotInBinding",
                            format!(
                                "{} is not one of BusinessProfileBinding {}'s numbers",
                                wanted.0, binding_name
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok((numbers, pending))
}

/// The Trust Products with the spec's exact friendly name and policy (Twilio's filter may match
/// more loosely): what a create left in flight may have made, or a product to adopt.
pub(super) async fn products_named(
    twilio: &dyn TrustHub,
    spec: &crate::api::ShakenStirTrustProductSpec,
) -> Result<Vec<TrustProduct>, ReconcileError> {
    let filter = BundleFilter {
        friendly_name: Some(spec.friendly_name.clone()),
        policy_sid: Some(spec.policy_sid.clone()),
        ..Default::default()
    };
    Ok(twilio
        .list_trust_products(&filter)
        .await
        .map_err(ReconcileError::twilio("look up the Trust Product by name"))?
        .into_iter()
        .filter(|p| p.friendly_name.as_deref() == Some(spec.friendly_name.as_str()))
        .collect())
}

/// Checks, against Trust Hub, that every number is assigned to the profile (only those can be
/// attached to a SHAKEN/STIR Trust Product, seed step 5). Numbers a binding vouches for are not
/// listed again: the binding looked them up itself, and should one have been removed in the
/// Console since, Twilio refuses the attach and the product reports `AttachmentRefused`.
pub(super) async fn check_numbers_on_profile(
    twilio: &dyn TrustHub,
    source: &Source,
) -> Result<(), ReconcileError> {
    if source.vouched_by_binding {
        return Ok(());
    }
    let on_profile: BTreeSet<String> = twilio
        .list_customer_profile_channel_endpoint_assignments_among(
            &source.profile_sid,
            &source
                .numbers
                .keys()
                .map(|n| n.to_string())
                .collect::<Vec<_>>(),
        )
        .await
        .map_err(|e| {
            if e.is_not_found() {
                ReconcileError::terminal(
                    "ProfileNotFound",
                    format!("Business Profile {} does not exist", source.profile_sid),
                )
            } else {
                ReconcileError::twilio("list the profile's phone numbers")(e)
            }
        })?
        .into_iter()
        .filter_map(|a| a.channel_endpoint_sid)
        .collect();
    let missing: Vec<&str> = source
        .numbers
        .keys()
        .map(|n| &**n)
        .filter(|n| !on_profile.contains(*n))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ReconcileError::terminal(
            "NumberNotOnProfile",
            format!(
                "not assigned to Business Profile {}: {}; only numbers on the profile can be attached (assign them with a BusinessProfileBinding first)",
                source.profile_sid,
                text::listed(&missing, ", ")
            ),
        ))
    }
}

/// Refuses numbers another `ShakenStirTrustProduct` of the cluster already attached: a number
/// belongs to at most one SHAKEN/STIR Trust Product. Checked in the informer cache, no Twilio call.
pub(super) fn check_numbers_unclaimed(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    source: &Source,
) -> Result<(), ReconcileError> {
    let Some(store) = ctx.products.get() else {
        return Ok(());
    };
    let me = obj.uid();
    for other in store.state() {
        if other.uid() == me || other.meta().deletion_timestamp.is_some() {
            continue;
        }
        let Some(stored) = &other.status else {
            continue;
        };
        let status = ctx
            .books
            .products
            .recall_ref(other.metadata.uid.as_deref(), Some(stored));
        if let Some(n) = status
            .phone_numbers
            .iter()
            .find(|n| n.assignment_sid.is_some() && source.numbers.contains_key(&*n.sid))
        {
            return Err(ReconcileError::terminal(
                "NumberOnAnotherTrustProduct",
                format!(
                    "{} is already attached to Trust Product {} (ShakenStirTrustProduct {}/{}); a number belongs to one SHAKEN/STIR Trust Product",
                    n.phone_number.as_deref().unwrap_or(&n.sid),
                    status.trust_product_sid.as_deref().unwrap_or("?"),
                    other.namespace().unwrap_or_default(),
                    other.name_any()
                ),
            ));
        }
    }
    Ok(())
}

fn not_found_or(
    operation: &'static str,
    sid: &str,
    reason: &'static str,
    what: &str,
) -> impl FnOnce(crate::twilio::TwilioError) -> ReconcileError {
    let sid = sid.to_string();
    let what = what.to_string();
    move |e| {
        if e.is_not_found() {
            ReconcileError::terminal(reason, format!("Trust Product {sid} {what}"))
        } else {
            ReconcileError::twilio(operation)(e)
        }
    }
}

type Writer<'a> = StatusWriter<'a, ShakenStirTrustProduct, ShakenStirTrustProductStatus>;

/// The object's Trust Product and whether this call created it: the recorded one, the one to
/// adopt, the one found by name, or a new one. Before the (non-idempotent) create,
/// `createPendingSince` is written to status; after it, the SID. A crash in between leaves
/// the marker, and the next reconcile's look-up finds and adopts the product instead of
/// creating a second one.
pub(super) async fn ensure_product(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    twilio: &dyn TrustHub,
    writer: &mut Writer<'_>,
    profile_sid: &str,
) -> Result<(TrustProduct, bool), ReconcileError> {
    let spec = &obj.spec;
    let recorded = writer.written.trust_product_sid.clone();
    if let Some(sid) = &recorded {
        super::ownership::check_product_unclaimed(obj, ctx, sid, true)?;
        return twilio.fetch_trust_product(sid).await.map(|p| (p, false)).map_err(not_found_or(
            "fetch the Trust Product",
            sid,
            "TrustProductNotFound",
            "recorded in status no longer exists in Twilio; delete and re-create this object to start over",
        ));
    }
    if let Some(sid) = &spec.trust_product_sid {
        let product = adopt_named(obj, ctx, twilio, writer, sid).await?;
        return Ok((product, false));
    }
    check_policy(obj, ctx, twilio).await?;
    let found = products_named(twilio, spec).await?;
    let found_sids: Vec<String> = found.iter().filter_map(|p| p.sid.clone()).collect();
    match decide_identity(&IdentityInputs {
        recorded_sid: None,
        adopt_sid: None,
        found_by_name: &found_sids,
    }) {
        Identity::Use(sid) => {
            let product = found
                .into_iter()
                .find(|p| p.sid.as_deref() == Some(sid.as_str()))
                .unwrap_or_default();
            super::ownership::check_product_unclaimed(obj, ctx, &sid, false)?;
            // A pending create marker means this object made it before a crash.
            let ours = writer.written.create_pending_since.is_some();
            record_identity(obj, ctx, writer, &product, ours).await?;
            Ok((product, false))
        }
        Identity::Ambiguous(sids) => Err(ReconcileError::terminal(
            "AmbiguousTrustProduct",
            format!(
                "{} Trust Products are named {:?} with policy {} ({}); set spec.trustProductSid to the one to manage",
                sids.len(),
                spec.friendly_name,
                spec.policy_sid,
                text::listed(&sids, ", ")
            ),
        )),
        Identity::Create => {
            // Twilio may have made the profile's SHAKEN/STIR product itself (another name).
            if let Some(product) = adopt_from_profile(obj, ctx, twilio, writer, profile_sid).await?
            {
                return Ok((product, false));
            }
            let product = create_product(obj, ctx, twilio, writer).await?;
            Ok((product, true))
        }
    }
}

/// The product named in `spec.trustProductSid`, checked to be a SHAKEN/STIR one nobody else
/// in the cluster manages, recorded as adopted.
async fn adopt_named(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    twilio: &dyn TrustHub,
    writer: &mut Writer<'_>,
    sid: &str,
) -> Result<TrustProduct, ReconcileError> {
    let spec = &obj.spec;
    let product = twilio.fetch_trust_product(sid).await.map_err(not_found_or(
        "fetch the Trust Product to adopt",
        sid,
        "TrustProductNotFound",
        "named in spec.trustProductSid does not exist in this account",
    ))?;
    if product.policy_sid.as_deref() != Some(spec.policy_sid.as_str()) {
        return Err(ReconcileError::terminal(
            "PolicyMismatch",
            format!(
                "Trust Product {sid} has policy {}, not {}; only a SHAKEN/STIR product can be adopted",
                product.policy_sid.as_deref().unwrap_or("(none)"),
                spec.policy_sid
            ),
        ));
    }
    super::ownership::check_product_unclaimed(obj, ctx, sid, false)?;
    record_identity(obj, ctx, writer, &product, false).await?;
    Ok(product)
}

/// Checks that the policy exists before a create, to fail with a clear `PolicyNotFound`; once
/// per [`super::super::POLICY_RECHECK`] for all products of an account.
async fn check_policy(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    twilio: &dyn TrustHub,
) -> Result<(), ReconcileError> {
    let spec = &obj.spec;
    let policy_key = format!(
        "{}/{}/{}",
        obj.namespace().unwrap_or_default(),
        spec.credentials.secret_name,
        spec.policy_sid
    );
    if ctx.policy_recently_seen(&policy_key) {
        return Ok(());
    }
    twilio.fetch_policy(&spec.policy_sid).await.map_err(|e| {
        if e.is_not_found() {
            ReconcileError::terminal(
                "PolicyNotFound",
                format!("Trust Hub has no policy {}: Twilio may have retired separate SHAKEN/STIR Trust Products for this account", spec.policy_sid),
            )
        } else {
            ReconcileError::twilio("fetch the SHAKEN/STIR policy")(e)
        }
    })?;
    ctx.note_policy_seen(policy_key);
    Ok(())
}

/// Creates the product: `createPendingSince` first, so a crash before the SID is recorded
/// leaves a marker that makes the next reconcile adopt what it finds by name.
async fn create_product(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    twilio: &dyn TrustHub,
    writer: &mut Writer<'_>,
) -> Result<TrustProduct, ReconcileError> {
    let spec = &obj.spec;
    let mut pending = ShakenStirTrustProductStatus::clone(&writer.written);
    pending.create_pending_since = Some(super::super::status::now());
    writer.write(pending).await?;
    let request = CreateTrustProduct {
        friendly_name: spec.friendly_name.clone(),
        email: spec.email.clone(),
        policy_sid: spec.policy_sid.clone(),
        status_callback: ctx
            .status_callback_for(spec.status_callback.as_deref())
            .map(str::to_string),
    };
    let product = match twilio.create_trust_product(&request).await {
        Ok(product) => product,
        Err(e) => {
            if !e.is_ambiguous() {
                // Twilio answered: no product was made, so a product of this name found later
                // is someone else's, to adopt, never to delete.
                let mut cleared = ShakenStirTrustProductStatus::clone(&writer.written);
                cleared.create_pending_since = None;
                writer.write(cleared).await?;
            }
            return Err(ReconcileError::twilio("create the Trust Product")(e));
        }
    };
    record_identity(obj, ctx, writer, &product, true).await?;
    Ok(product)
}

/// The SHAKEN/STIR product already attached to the profile, adopted, if there is one; a
/// terminal error if there are several, or if another object of the cluster owns it.
async fn adopt_from_profile(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    twilio: &dyn TrustHub,
    writer: &mut Writer<'_>,
    profile_sid: &str,
) -> Result<Option<TrustProduct>, ReconcileError> {
    let spec = &obj.spec;
    let on_profile = (profile_sid, spec.policy_sid.as_str());
    let mut found =
        super::ownership::products_on_profile(ctx, twilio, on_profile, writer.started).await?;
    match found.len() {
        0 => Ok(None),
        1 => {
            let product = found.remove(0);
            let sid = product.sid.clone().unwrap_or_default();
            super::ownership::check_product_unclaimed(obj, ctx, &sid, false)?;
            super::ownership::record_profile_adoption(obj, ctx, writer, &product, profile_sid)
                .await?;
            Ok(Some(product))
        }
        _ => {
            let sids: Vec<String> = found.iter().filter_map(|p| p.sid.clone()).collect();
            Err(ReconcileError::terminal(
                "AmbiguousTrustProduct",
                format!(
                    "{} SHAKEN/STIR Trust Products are attached to Business Profile {profile_sid} ({}); set spec.trustProductSid to the one to manage",
                    sids.len(),
                    text::listed(&sids, ", ")
                ),
            ))
        }
    }
}

async fn record_identity(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    writer: &mut Writer<'_>,
    product: &TrustProduct,
    created: bool,
) -> Result<(), ReconcileError> {
    let sid = product.sid.clone().unwrap_or_default();
    let mut status = ShakenStirTrustProductStatus::clone(&writer.written);
    status.trust_product_sid = Some(sid.clone());
    status.trust_product_created = created;
    status.create_pending_since = None;
    writer.write(status).await?;
    let (reason, note) = if created {
        (
            "TrustProductCreated",
            format!("created SHAKEN/STIR Trust Product {sid}"),
        )
    } else {
        (
            "TrustProductAdopted",
            format!("adopted existing Trust Product {sid}"),
        )
    };
    super::super::status::event(
        ctx,
        obj,
        kube::runtime::events::EventType::Normal,
        reason,
        "CreateTrustProduct",
        note,
    )
    .await;
    Ok(())
}
