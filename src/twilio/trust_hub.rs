//! The [`TrustHub`] trait (every Twilio operation the operator performs) and [`TwilioClient`],
//! its HTTP implementation.
//!
//! The trait is object-safe (`async_trait`) so the controller can hold `Arc<dyn TrustHub>` and
//! tests can substitute a fake that counts calls. Every SID that goes into a path is checked
//! against the spec's pattern before sending, so a malformed value can never address a
//! different resource. Lists return every page; deletes answering 404 return an error with
//! `is_not_found()` (the caller treats it as gone).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::credentials::{Credentials, is_sid};
use super::error::TwilioError;
use super::http::{Api, Call, CallObserver, ClientConfig, Transport, decode};
use super::types::{
    Account, AccountFilter, Bundle, BundleFilter, ChannelEndpointAssignment, CreateTrustProduct,
    CustomerProfile, EntityAssignment, Evaluation, IncomingPhoneNumber, PHONE_NUMBER_ENDPOINT,
    Policy, TrustProduct, UpdateTrustProduct,
};

pub type Result<T> = std::result::Result<T, TwilioError>;

#[async_trait]
pub trait TrustHub: Send + Sync {
    /// The account the credentials act for (whose Trust Hub is read and written).
    fn account_sid(&self) -> &str;

    // --- CustomerProfiles (read-only: profiles are made and submitted in the Console) ---
    async fn list_customer_profiles(&self, filter: &BundleFilter) -> Result<Vec<CustomerProfile>>;
    async fn fetch_customer_profile(&self, sid: &str) -> Result<CustomerProfile>;
    /// Assigns a phone number (`PN…`) to a profile (`ChannelEndpointType=phone-number`).
    async fn create_customer_profile_channel_endpoint_assignment(
        &self,
        customer_profile_sid: &str,
        phone_number_sid: &str,
    ) -> Result<ChannelEndpointAssignment>;
    /// Lists a profile's assignments, optionally only the one for `channel_endpoint_sid`.
    async fn list_customer_profile_channel_endpoint_assignments(
        &self,
        customer_profile_sid: &str,
        channel_endpoint_sid: Option<&str>,
    ) -> Result<Vec<ChannelEndpointAssignment>>;
    /// Lists the profile's assignments of exactly these endpoints (`ChannelEndpointSids`,
    /// comma-separated, sent in chunks), so the cost follows the caller's numbers, not every
    /// number on a profile shared by many. No request when `channel_endpoint_sids` is empty.
    async fn list_customer_profile_channel_endpoint_assignments_among(
        &self,
        customer_profile_sid: &str,
        channel_endpoint_sids: &[String],
    ) -> Result<Vec<ChannelEndpointAssignment>>;
    async fn delete_customer_profile_channel_endpoint_assignment(
        &self,
        customer_profile_sid: &str,
        assignment_sid: &str,
    ) -> Result<()>;

    // --- TrustProducts ---
    async fn create_trust_product(&self, request: &CreateTrustProduct) -> Result<TrustProduct>;
    async fn list_trust_products(&self, filter: &BundleFilter) -> Result<Vec<TrustProduct>>;
    /// [`TrustHub::list_trust_products`], keeping only the products `keep` accepts, each
    /// dropped as soon as it is decoded: an account may hold thousands of SHAKEN/STIR products,
    /// of which a caller looks for the few it does not know.
    async fn list_trust_products_where(
        &self,
        filter: &BundleFilter,
        keep: &(dyn for<'p> Fn(&'p TrustProduct) -> bool + Send + Sync),
    ) -> Result<Vec<TrustProduct>> {
        let mut products = self.list_trust_products(filter).await?;
        products.retain(|p| keep(p));
        Ok(products)
    }
    async fn fetch_trust_product(&self, sid: &str) -> Result<TrustProduct>;
    async fn update_trust_product(
        &self,
        sid: &str,
        request: &UpdateTrustProduct,
    ) -> Result<TrustProduct>;
    async fn delete_trust_product(&self, sid: &str) -> Result<()>;

    async fn create_trust_product_entity_assignment(
        &self,
        trust_product_sid: &str,
        object_sid: &str,
    ) -> Result<EntityAssignment>;
    async fn list_trust_product_entity_assignments(
        &self,
        trust_product_sid: &str,
    ) -> Result<Vec<EntityAssignment>>;
    async fn delete_trust_product_entity_assignment(
        &self,
        trust_product_sid: &str,
        assignment_sid: &str,
    ) -> Result<()>;

    async fn create_trust_product_channel_endpoint_assignment(
        &self,
        trust_product_sid: &str,
        phone_number_sid: &str,
    ) -> Result<ChannelEndpointAssignment>;
    async fn list_trust_product_channel_endpoint_assignments(
        &self,
        trust_product_sid: &str,
        channel_endpoint_sid: Option<&str>,
    ) -> Result<Vec<ChannelEndpointAssignment>>;
    async fn delete_trust_product_channel_endpoint_assignment(
        &self,
        trust_product_sid: &str,
        assignment_sid: &str,
    ) -> Result<()>;

    async fn create_trust_product_evaluation(
        &self,
        trust_product_sid: &str,
        policy_sid: &str,
    ) -> Result<Evaluation>;
    async fn list_trust_product_evaluations(
        &self,
        trust_product_sid: &str,
    ) -> Result<Vec<Evaluation>>;

    // --- Policies ---
    async fn fetch_policy(&self, sid: &str) -> Result<Policy>;

    // --- API 2010: Accounts and IncomingPhoneNumbers ---
    /// Subaccounts of the calling account (needs the auth token or a Main key).
    async fn list_accounts(&self, filter: &AccountFilter) -> Result<Vec<Account>>;
    async fn fetch_account(&self, sid: &str) -> Result<Account>;
    /// Numbers of `account_sid` (the caller's or a subaccount's), optionally filtered by
    /// `PhoneNumber` (E.164 or partial, server-side).
    async fn list_incoming_phone_numbers(
        &self,
        account_sid: &str,
        phone_number: Option<&str>,
    ) -> Result<Vec<IncomingPhoneNumber>>;
    async fn fetch_incoming_phone_number(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> Result<IncomingPhoneNumber>;
}

/// The HTTP implementation of [`TrustHub`]. Cheap to share: wrap it in an `Arc`.
pub struct TwilioClient {
    transport: Transport,
}

impl fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioClient")
            .field("transport", &self.transport)
            .finish()
    }
}

/// A checked path segment: a SID with the expected prefix.
fn sid<'a>(what: &str, value: &'a str, prefix: &str) -> Result<&'a str> {
    if is_sid(value, prefix) {
        Ok(value)
    } else {
        Err(TwilioError::InvalidArgument(format!(
            "{what} must be {prefix} followed by 32 hex digits, got {value:?}"
        )))
    }
}

/// Any 2-letter-prefix SID (spec pattern of `ChannelEndpointSid` / `ObjectSid`).
fn any_sid<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    let prefix = value.get(..2).unwrap_or_default();
    if prefix.chars().all(|c| c.is_ascii_alphabetic()) && is_sid(value, prefix) {
        Ok(value)
    } else {
        Err(TwilioError::InvalidArgument(format!(
            "{what} must be two letters followed by 32 hex digits, got {value:?}"
        )))
    }
}

/// An answer naming one Twilio object. Its SID is required: an object without one cannot be
/// recorded, addressed again or cleaned up, so such an answer is an error, never `""`.
trait Identified {
    fn sid_is_missing(&self) -> bool;
}

macro_rules! identified {
    ($($t:ty),*) => {$(
        impl Identified for $t {
            fn sid_is_missing(&self) -> bool {
                self.sid.as_deref().is_none_or(str::is_empty)
            }
        }
    )*};
}

identified!(
    Bundle,
    ChannelEndpointAssignment,
    EntityAssignment,
    Evaluation,
    Policy,
    Account,
    IncomingPhoneNumber
);

impl TwilioClient {
    pub fn new(credentials: Credentials, config: ClientConfig) -> Result<Self> {
        Ok(Self {
            transport: Transport::new(credentials, config)?,
        })
    }

    /// Reports every HTTP attempt to `observer` (metrics).
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.transport.set_observer(observer);
        self
    }

    pub fn config(&self) -> &ClientConfig {
        self.transport.config()
    }

    async fn get<T: DeserializeOwned + Identified>(
        &self,
        op: &'static str,
        api: Api,
        path: &str,
    ) -> Result<T> {
        let url = self.transport.url(api, path)?;
        let call = Call {
            operation: op,
            method: Method::GET,
            url,
            query: &[],
            form: None,
        };
        let (status, body) = self.transport.send(&call).await?;
        let answer: T = decode(op, status, &body)?;
        if answer.sid_is_missing() {
            return Err(TwilioError::Decode {
                operation: op,
                status: status.as_u16(),
                detail: "the answer carries no sid".into(),
            });
        }
        Ok(answer)
    }

    /// POSTs a create or update. Once Twilio answered 2xx the write happened, so an answer that
    /// does not decode, or names no object, is ambiguous, not a refusal: the object may exist,
    /// and the caller must look it up before creating again.
    async fn post<T: DeserializeOwned + Identified>(
        &self,
        op: &'static str,
        path: &str,
        form: &[(&'static str, String)],
    ) -> Result<T> {
        let url = self.transport.url(Api::TrustHub, path)?;
        let call = Call {
            operation: op,
            method: Method::POST,
            url,
            query: &[],
            form: Some(form),
        };
        let (status, body) = self.transport.send(&call).await?;
        let ambiguous = |reason: String| TwilioError::Ambiguous {
            operation: op,
            status: Some(status.as_u16()),
            body: None,
            reason,
        };
        let answer: T = decode(op, status, &body)
            .map_err(|e| ambiguous(format!("undecodable HTTP {status} answer: {e}")))?;
        if answer.sid_is_missing() {
            return Err(ambiguous(format!("HTTP {status} answer without a sid")));
        }
        Ok(answer)
    }

    /// Every page of a list. An item naming no object is an error, like a single answer
    /// without a SID: it could be neither recorded nor addressed.
    async fn list<T: DeserializeOwned + Identified>(
        &self,
        op: &'static str,
        api: Api,
        path: &str,
        filters: Vec<(&'static str, String)>,
        key: &'static str,
    ) -> Result<Vec<T>> {
        self.list_where(op, api, path, filters, key, &|_| true)
            .await
    }

    /// [`TwilioClient::list`], keeping the items `keep` accepts.
    async fn list_where<T: DeserializeOwned + Identified>(
        &self,
        op: &'static str,
        api: Api,
        path: &str,
        filters: Vec<(&'static str, String)>,
        key: &'static str,
        keep: &(dyn Fn(&T) -> bool + Send + Sync),
    ) -> Result<Vec<T>> {
        let items: Vec<T> = self
            .transport
            .list(op, api, path, filters, key, keep)
            .await?;
        if items.iter().any(Identified::sid_is_missing) {
            return Err(TwilioError::Decode {
                operation: op,
                status: 200,
                detail: format!("an item of {key:?} carries no sid"),
            });
        }
        Ok(items)
    }

    async fn delete(&self, op: &'static str, path: &str) -> Result<()> {
        let url = self.transport.url(Api::TrustHub, path)?;
        let call = Call {
            operation: op,
            method: Method::DELETE,
            url,
            query: &[],
            form: None,
        };
        self.transport.send(&call).await.map(|_| ())
    }

    fn endpoint_form(phone_number_sid: &str) -> Result<Vec<(&'static str, String)>> {
        Ok(vec![
            ("ChannelEndpointType", PHONE_NUMBER_ENDPOINT.to_owned()),
            (
                "ChannelEndpointSid",
                any_sid("ChannelEndpointSid", phone_number_sid)?.to_owned(),
            ),
        ])
    }

    fn endpoint_filter(channel_endpoint_sid: Option<&str>) -> Result<Vec<(&'static str, String)>> {
        channel_endpoint_sid
            .map(|s| {
                Ok((
                    "ChannelEndpointSid",
                    any_sid("ChannelEndpointSid", s)?.to_owned(),
                ))
            })
            .into_iter()
            .collect()
    }
}

#[async_trait]
impl TrustHub for TwilioClient {
    fn account_sid(&self) -> &str {
        self.transport.credentials().account_sid()
    }

    async fn list_customer_profiles(&self, filter: &BundleFilter) -> Result<Vec<CustomerProfile>> {
        let path = "/v1/CustomerProfiles";
        let op = "ListCustomerProfile";
        self.list(op, Api::TrustHub, path, filter.params(), "results")
            .await
    }

    async fn fetch_customer_profile(&self, sid_: &str) -> Result<CustomerProfile> {
        let path = format!(
            "/v1/CustomerProfiles/{}",
            sid("CustomerProfileSid", sid_, "BU")?
        );
        self.get("FetchCustomerProfile", Api::TrustHub, &path).await
    }

    async fn create_customer_profile_channel_endpoint_assignment(
        &self,
        customer_profile_sid: &str,
        phone_number_sid: &str,
    ) -> Result<ChannelEndpointAssignment> {
        let bu = sid("CustomerProfileSid", customer_profile_sid, "BU")?;
        let path = format!("/v1/CustomerProfiles/{bu}/ChannelEndpointAssignments");
        let form = Self::endpoint_form(phone_number_sid)?;
        let op = "CreateCustomerProfileChannelEndpointAssignment";
        self.post(op, &path, &form).await
    }

    async fn list_customer_profile_channel_endpoint_assignments(
        &self,
        customer_profile_sid: &str,
        channel_endpoint_sid: Option<&str>,
    ) -> Result<Vec<ChannelEndpointAssignment>> {
        let bu = sid("CustomerProfileSid", customer_profile_sid, "BU")?;
        let path = format!("/v1/CustomerProfiles/{bu}/ChannelEndpointAssignments");
        let filter = Self::endpoint_filter(channel_endpoint_sid)?;
        let op = "ListCustomerProfileChannelEndpointAssignment";
        self.list(op, Api::TrustHub, &path, filter, "results").await
    }

    async fn list_customer_profile_channel_endpoint_assignments_among(
        &self,
        customer_profile_sid: &str,
        channel_endpoint_sids: &[String],
    ) -> Result<Vec<ChannelEndpointAssignment>> {
        let bu = sid("CustomerProfileSid", customer_profile_sid, "BU")?;
        let path = format!("/v1/CustomerProfiles/{bu}/ChannelEndpointAssignments");
        let op = "ListCustomerProfileChannelEndpointAssignment";
        let mut found = Vec::new();
        // 50 SIDs keep the query under 2 KiB, well inside any proxy's URL limit.
        for chunk in channel_endpoint_sids.chunks(50) {
            let sids = chunk
                .iter()
                .map(|s| any_sid("ChannelEndpointSids", s).map(str::to_owned))
                .collect::<Result<Vec<_>>>()?;
            let filter = vec![("ChannelEndpointSids", sids.join(","))];
            found.extend(
                self.list(op, Api::TrustHub, &path, filter, "results")
                    .await?,
            );
        }
        Ok(found)
    }

    async fn delete_customer_profile_channel_endpoint_assignment(
        &self,
        customer_profile_sid: &str,
        assignment_sid: &str,
    ) -> Result<()> {
        let bu = sid("CustomerProfileSid", customer_profile_sid, "BU")?;
        let ra = sid("Sid", assignment_sid, "RA")?;
        let path = format!("/v1/CustomerProfiles/{bu}/ChannelEndpointAssignments/{ra}");
        self.delete("DeleteCustomerProfileChannelEndpointAssignment", &path)
            .await
    }

    async fn create_trust_product(&self, request: &CreateTrustProduct) -> Result<TrustProduct> {
        sid("PolicySid", &request.policy_sid, "RN")?;
        (self.post("CreateTrustProduct", "/v1/TrustProducts", &request.form())).await
    }

    async fn list_trust_products(&self, filter: &BundleFilter) -> Result<Vec<TrustProduct>> {
        self.list_trust_products_where(filter, &|_| true).await
    }

    async fn list_trust_products_where(
        &self,
        filter: &BundleFilter,
        keep: &(dyn for<'p> Fn(&'p TrustProduct) -> bool + Send + Sync),
    ) -> Result<Vec<TrustProduct>> {
        if let Some(policy) = &filter.policy_sid {
            sid("PolicySid", policy, "RN")?;
        }
        self.list_where(
            "ListTrustProduct",
            Api::TrustHub,
            "/v1/TrustProducts",
            filter.params(),
            "results",
            keep,
        )
        .await
    }

    async fn fetch_trust_product(&self, sid_: &str) -> Result<TrustProduct> {
        let path = format!("/v1/TrustProducts/{}", sid("Sid", sid_, "BU")?);
        self.get("FetchTrustProduct", Api::TrustHub, &path).await
    }

    async fn update_trust_product(
        &self,
        sid_: &str,
        request: &UpdateTrustProduct,
    ) -> Result<TrustProduct> {
        let path = format!("/v1/TrustProducts/{}", sid("Sid", sid_, "BU")?);
        self.post("UpdateTrustProduct", &path, &request.form())
            .await
    }

    async fn delete_trust_product(&self, sid_: &str) -> Result<()> {
        let path = format!("/v1/TrustProducts/{}", sid("Sid", sid_, "BU")?);
        self.delete("DeleteTrustProduct", &path).await
    }

    async fn create_trust_product_entity_assignment(
        &self,
        trust_product_sid: &str,
        object_sid: &str,
    ) -> Result<EntityAssignment> {
        let bu = sid("TrustProductSid", trust_product_sid, "BU")?;
        let path = format!("/v1/TrustProducts/{bu}/EntityAssignments");
        let form = [("ObjectSid", any_sid("ObjectSid", object_sid)?.to_owned())];
        self.post("CreateTrustProductEntityAssignment", &path, &form)
            .await
    }

    async fn list_trust_product_entity_assignments(
        &self,
        trust_product_sid: &str,
    ) -> Result<Vec<EntityAssignment>> {
        let bu = sid("TrustProductSid", trust_product_sid, "BU")?;
        let path = format!("/v1/TrustProducts/{bu}/EntityAssignments");
        let op = "ListTrustProductEntityAssignment";
        self.list(op, Api::TrustHub, &path, Vec::new(), "results")
            .await
    }

    async fn delete_trust_product_entity_assignment(
        &self,
        trust_product_sid: &str,
        assignment_sid: &str,
    ) -> Result<()> {
        let bu = sid("TrustProductSid", trust_product_sid, "BU")?;
        let bv = sid("Sid", assignment_sid, "BV")?;
        let path = format!("/v1/TrustProducts/{bu}/EntityAssignments/{bv}");
        self.delete("DeleteTrustProductEntityAssignment", &path)
            .await
    }

    async fn create_trust_product_channel_endpoint_assignment(
        &self,
        trust_product_sid: &str,
        phone_number_sid: &str,
    ) -> Result<ChannelEndpointAssignment> {
        let bu = sid("TrustProductSid", trust_product_sid, "BU")?;
        let path = format!("/v1/TrustProducts/{bu}/ChannelEndpointAssignments");
        let form = Self::endpoint_form(phone_number_sid)?;
        let op = "CreateTrustProductChannelEndpointAssignment";
        self.post(op, &path, &form).await
    }

    async fn list_trust_product_channel_endpoint_assignments(
        &self,
        trust_product_sid: &str,
        channel_endpoint_sid: Option<&str>,
    ) -> Result<Vec<ChannelEndpointAssignment>> {
        let bu = sid("TrustProductSid", trust_product_sid, "BU")?;
        let path = format!("/v1/TrustProducts/{bu}/ChannelEndpointAssignments");
        let filter = Self::endpoint_filter(channel_endpoint_sid)?;
        let op = "ListTrustProductChannelEndpointAssignment";
        self.list(op, Api::TrustHub, &path, filter, "results").await
    }

    async fn delete_trust_product_channel_endpoint_assignment(
        &self,
        trust_product_sid: &str,
        assignment_sid: &str,
    ) -> Result<()> {
        let bu = sid("TrustProductSid", trust_product_sid, "BU")?;
        let ra = sid("Sid", assignment_sid, "RA")?;
        let path = format!("/v1/TrustProducts/{bu}/ChannelEndpointAssignments/{ra}");
        self.delete("DeleteTrustProductChannelEndpointAssignment", &path)
            .await
    }

    async fn create_trust_product_evaluation(
        &self,
        trust_product_sid: &str,
        policy_sid: &str,
    ) -> Result<Evaluation> {
        let bu = sid("TrustProductSid", trust_product_sid, "BU")?;
        let path = format!("/v1/TrustProducts/{bu}/Evaluations");
        let form = [("PolicySid", sid("PolicySid", policy_sid, "RN")?.to_owned())];
        self.post("CreateTrustProductEvaluation", &path, &form)
            .await
    }

    async fn list_trust_product_evaluations(
        &self,
        trust_product_sid: &str,
    ) -> Result<Vec<Evaluation>> {
        let bu = sid("TrustProductSid", trust_product_sid, "BU")?;
        let path = format!("/v1/TrustProducts/{bu}/Evaluations");
        let op = "ListTrustProductEvaluation";
        self.list(op, Api::TrustHub, &path, Vec::new(), "results")
            .await
    }

    async fn fetch_policy(&self, sid_: &str) -> Result<Policy> {
        let path = format!("/v1/Policies/{}", sid("Sid", sid_, "RN")?);
        self.get("FetchPolicies", Api::TrustHub, &path).await
    }

    async fn list_accounts(&self, filter: &AccountFilter) -> Result<Vec<Account>> {
        let path = "/2010-04-01/Accounts.json";
        self.list("ListAccount", Api::V2010, path, filter.params(), "accounts")
            .await
    }

    async fn fetch_account(&self, sid_: &str) -> Result<Account> {
        let path = format!("/2010-04-01/Accounts/{}.json", sid("Sid", sid_, "AC")?);
        self.get("FetchAccount", Api::V2010, &path).await
    }

    async fn list_incoming_phone_numbers(
        &self,
        account_sid: &str,
        phone_number: Option<&str>,
    ) -> Result<Vec<IncomingPhoneNumber>> {
        let ac = sid("AccountSid", account_sid, "AC")?;
        let path = format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json");
        let filter = phone_number
            .map(|n| ("PhoneNumber", n.to_owned()))
            .into_iter()
            .collect();
        let op = "ListIncomingPhoneNumber";
        self.list(op, Api::V2010, &path, filter, "incoming_phone_numbers")
            .await
    }

    async fn fetch_incoming_phone_number(
        &self,
        account_sid: &str,
        sid_: &str,
    ) -> Result<IncomingPhoneNumber> {
        let ac = sid("AccountSid", account_sid, "AC")?;
        let pn = sid("Sid", sid_, "PN")?;
        let path = format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers/{pn}.json");
        self.get("FetchIncomingPhoneNumber", Api::V2010, &path)
            .await
    }
}
