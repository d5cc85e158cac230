"""infra/cloudformation rendered with test parameters (render.py) and checked against what Cairn
does: the cache policies' TTLs, the IAM actions against the AWS SDK calls in src/, where
CloudFront's logs land against where Cairn reads them, and the points a real AWS account needs
(bucket names, KMS, replication, failover timing, key generations, multipart cleanup).

    python3 -m unittest discover -s infra/tests -v
"""
import math
import pathlib
import re
import unittest

from render import InvalidParameter, Rendered, RuleFailed, actions, resources

ROOT = pathlib.Path(__file__).resolve().parents[2]
CAIRN = ROOT / "infra/cloudformation/cairn.yaml"
REPLICA = ROOT / "infra/cloudformation/replica-bucket.yaml"
SRC = ROOT / "src"

PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
KMS = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
REPLICA_KMS = "arn:aws:kms:us-east-2:123456789012:key/5678abcd-12ab-34cd-56ef-1234567890ab"
OBJECTS = "cairn-test-objects"

# What IAM authorises each AWS API operation Cairn calls with (the S3 and CloudFront service
# authorization references). An operation missing here fails the test: add its action, and the
# action to the policy.
S3_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}
# Of those, the bucket-level ones (Resource: the bucket's ARN, not its objects).
S3_BUCKET_ACTIONS = {"s3:ListBucket", "s3:ListBucketMultipartUploads"}
CLOUDFRONT_ACTIONS = {"CreateInvalidation": "cloudfront:CreateInvalidation"}


def render(**params):
    base = {"AllowedOrigins": "https://app.example.com", "CloudFrontPublicKeyPem": PEM}
    base.update(params)
    return Rendered(CAIRN, base, {"ObjectBucket": params.get("BucketName") or OBJECTS})


def pascal(snake):
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def production_source(path):
    """A Rust file without its unit tests (they may call the SDK to compare with it)."""
    text = path.read_text()
    return text.split("#[cfg(test)]", 1)[0]


def sdk_calls():
    """The AWS API operations Cairn calls, by service: fluent SDK calls on an S3 or CloudFront
    client (`client.head_object()`, `.client().create_multipart_upload()`) and the operations
    of URLs and forms it presigns itself (`x-id`, the POST policy)."""
    calls = {"s3": set(), "cloudfront": set()}
    for path in sorted(SRC.rglob("*.rs")):
        text = production_source(path)
        ops = {
            pascal(m)
            for m in re.findall(r"\bclient(?:\(\))?\s*\.\s*([a-z][a-z0-9_]*)\(\)", text)
            # The client's own accessors, not API operations.
            if m not in ("clone", "config")
        }
        if not ops:
            continue
        service = "cloudfront" if "aws_sdk_cloudfront" in text else "s3"
        calls[service] |= ops
        calls["s3"] |= set(re.findall(r'"x-id",\s*"(\w+)"', text))
        if "post_policy(" in text:
            calls["s3"].add("PutObject")
    return calls


def action_of(table, op):
    if op not in table:
        raise AssertionError(f"Cairn calls {op}: add the IAM action it needs to the test's table")
    return table[op]


class CachePolicies(unittest.TestCase):
    def test_private_objects_are_cached_at_the_edge_for_at_most_a_url_lifetime(self):
        t = render()
        private = t.props("PrivateCachePolicy")["CachePolicyConfig"]
        # What Cairn stores private objects with: `private` keeps CloudFront from caching them
        # unless MinTTL > 0.
        storage = (SRC / "storage/mod.rs").read_text()
        self.assertRegex(storage, r'PRIVATE_IMMUTABLE: &str = "private, ')
        self.assertGreater(private["MinTTL"], 0)
        self.assertLessEqual(private["MinTTL"], private["DefaultTTL"])
        self.assertLessEqual(private["DefaultTTL"], private["MaxTTL"])
        # No longer than the longest URL (Cairn's MAX_PRESIGN_TTL_SECS: 7 days).
        self.assertIn("MAX_PRESIGN_TTL_SECS: u64 = 7 * 24 * 3600", (SRC / "config/server.rs").read_text())
        self.assertEqual(private["MaxTTL"], 7 * 24 * 3600)
        keys = private["ParametersInCacheKeyAndForwardedToOrigin"]["QueryStringsConfig"]
        self.assertEqual(keys, {"QueryStringBehavior": "whitelist",
                                "QueryStrings": ["response-content-disposition"]})

    def test_a_public_object_is_one_cache_entry_whatever_its_query(self):
        t = render()
        public = t.props("PublicCachePolicy")["CachePolicyConfig"]
        # Invalidating the bare path purges every URL Cairn gives out for it (`/content` adds
        # `?response-content-disposition=`): the query is not in the key.
        keys = public["ParametersInCacheKeyAndForwardedToOrigin"]
        self.assertEqual(keys["QueryStringsConfig"], {"QueryStringBehavior": "none"})
        self.assertEqual(keys["CookiesConfig"], {"CookieBehavior": "none"})
        self.assertEqual(keys["HeadersConfig"], {"HeaderBehavior": "none"})
        self.assertEqual(public["MaxTTL"], 31536000)
        behaviours = t.props("Distribution")["DistributionConfig"]["CacheBehaviors"]
        self.assertEqual([(b["PathPattern"], b["CachePolicyId"]) for b in behaviours],
                         [("public/*", "<PublicCachePolicy>")])


class CairnPermissions(unittest.TestCase):
    def test_the_sdk_calls_are_found(self):
        calls = sdk_calls()
        # A scan that found nothing would make the comparison below vacuous.
        self.assertTrue({"PutObject", "GetObject", "HeadObject", "ListObjectsV2", "UploadPart",
                         "HeadBucket", "DeleteObjects"} <= calls["s3"], calls)
        self.assertEqual(calls["cloudfront"], {"CreateInvalidation"})

    def test_iam_actions_are_exactly_the_sdk_calls_cairn_makes(self):
        calls = sdk_calls()
        want_s3 = {action_of(S3_ACTIONS, op) for op in calls["s3"]}
        want_cf = {action_of(CLOUDFRONT_ACTIONS, op) for op in calls["cloudfront"]}
        for params in ({}, {"KmsKeyArn": KMS, "LogBucket": "cairn-test-logs"}):
            t = render(**params)
            s = t.statements("CairnAccessPolicy")
            arn = f"arn:aws:s3:::{OBJECTS}"
            self.assertEqual(actions(s["Objects"]) | actions(s["Bucket"]), want_s3, params)
            self.assertEqual(actions(s["Bucket"]), want_s3 & S3_BUCKET_ACTIONS)
            self.assertEqual(sorted(resources(s["Objects"])),
                             [f"{arn}/public/*", f"{arn}/tenants/*"])
            self.assertEqual(resources(s["Bucket"]), [arn])
            self.assertEqual(actions(s["Invalidations"]), want_cf)
            self.assertNotIn("cloudfront:GetInvalidation", actions(s["Invalidations"]))
            self.assertEqual(resources(s["Invalidations"]),
                             ["arn:aws:cloudfront::123456789012:distribution/E2CAIRNTEST"])
            every = set().union(*(actions(x) for x in s.values()))
            self.assertFalse({a for a in every if a.endswith("*")}, "no wildcard actions")

    def test_the_kms_key_is_used_only_through_s3_for_this_bucket(self):
        self.assertNotIn("ObjectEncryptionKey", render().statements("CairnAccessPolicy"))
        s = render(KmsKeyArn=KMS).statements("CairnAccessPolicy")["ObjectEncryptionKey"]
        self.assertEqual(actions(s), {"kms:GenerateDataKey", "kms:Decrypt"})
        self.assertEqual(resources(s), [KMS])
        self.assertEqual(s["Condition"]["StringEquals"],
                         {"kms:ViaService": "s3.eu-west-1.amazonaws.com"})
        self.assertEqual(s["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"],
                         [f"arn:aws:s3:::{OBJECTS}", f"arn:aws:s3:::{OBJECTS}/*"])


class CdnLogs(unittest.TestCase):
    def test_logs_land_in_the_log_bucket_cairn_reads_with_what_it_may_do_there(self):
        t = render(LogBucket="cairn-test-logs", LogPrefix="cloudfront/")
        logging = t.props("Distribution")["DistributionConfig"]["Logging"]
        self.assertEqual(logging, {"Bucket": "cairn-test-logs.s3.amazonaws.com",
                                   "Prefix": "cloudfront/", "IncludeCookies": False})
        # The output Cairn takes as CAIRN_CDN_LOG_PREFIX names that bucket and prefix.
        self.assertEqual(t.outputs["CdnLogPrefix"], "s3://cairn-test-logs/cloudfront/")
        self.assertNotEqual(t.outputs["CdnLogPrefix"].split("/")[2], t.outputs["BucketName"])
        # Ingest lists the prefix and reads the files (src/metering/ingest.rs through the store).
        ingest = (SRC / "metering/ingest.rs").read_text()
        self.assertIn("store.list_objects(prefix", ingest)
        self.assertIn("store.read_prefix(", ingest)
        calls = sdk_calls()["s3"]
        self.assertTrue({"ListObjectsV2", "GetObject"} <= calls)
        s = t.statements("CairnAccessPolicy")
        self.assertEqual(actions(s["ListCdnLogs"]), {"s3:ListBucket"})
        self.assertEqual(resources(s["ListCdnLogs"]), ["arn:aws:s3:::cairn-test-logs"])
        self.assertEqual(s["ListCdnLogs"]["Condition"],
                         {"StringLike": {"s3:prefix": "cloudfront/*"}})
        self.assertEqual(actions(s["ReadCdnLogs"]), {"s3:GetObject"})
        self.assertEqual(resources(s["ReadCdnLogs"]),
                         ["arn:aws:s3:::cairn-test-logs/cloudfront/*"])

    def test_without_a_log_bucket_nothing_logs_and_nothing_is_granted(self):
        t = render()
        self.assertNotIn("Logging", t.props("Distribution")["DistributionConfig"])
        self.assertNotIn("CdnLogPrefix", t.outputs)
        s = t.statements("CairnAccessPolicy")
        self.assertFalse({"ListCdnLogs", "ReadCdnLogs"} & set(s))

    def test_the_object_bucket_is_never_the_log_bucket(self):
        # CloudFront's standard logs need ACLs; the object bucket has none (BucketOwnerEnforced).
        t = render()
        self.assertEqual(t.props("ObjectBucket")["OwnershipControls"],
                         {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        with self.assertRaises(RuleFailed):
            render(BucketName="cairn-prod", LogBucket="cairn-prod")

    def test_log_prefixes_cairn_would_refuse_are_refused(self):
        for ok in ["", "cloudfront/", "cloudfront", "logs/cloudfront/", "a.b_c-(1)/"]:
            render(LogBucket="cairn-test-logs", LogPrefix=ok)
        for bad in ["/cloudfront/", "logs//cloudfront/", "a b/"]:
            with self.assertRaises(InvalidParameter, msg=bad):
                render(LogBucket="cairn-test-logs", LogPrefix=bad)


class RealAccount(unittest.TestCase):
    def test_dotted_bucket_names_are_refused(self):
        for param in ["BucketName", "LogBucket", "ReplicaBucketName"]:
            with self.assertRaises(InvalidParameter, msg=param):
                render(**{param: "cairn.example.com"})
            render(**{param: "cairn-example-com", "ReplicaRegion": "us-east-2"})
        with self.assertRaises(InvalidParameter):
            Rendered(REPLICA, {"BucketName": "cairn.replica"})
        Rendered(REPLICA, {"BucketName": "cairn-replica"})

    def test_multipart_uploads_are_aborted_no_sooner_than_cairn_gives_up_on_them(self):
        config = (SRC / "config/jobs.rs").read_text()
        ttl = int(re.search(r'env = "CAIRN_PENDING_TTL_SECS", default_value = "(\d+)"',
                            config).group(1))

        def abort_days(t):
            rules = t.props("ObjectBucket")["LifecycleConfiguration"]["Rules"]
            (rule,) = [r for r in rules if "AbortIncompleteMultipartUpload" in r]
            return int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])

        self.assertEqual(abort_days(render()), math.ceil(ttl / 86400))
        self.assertEqual(abort_days(render(PendingUploadDays=3)), 3)
        with self.assertRaises(InvalidParameter):
            render(PendingUploadDays=0)

    def test_replication_with_bucket_keys_may_decrypt_with_the_replica_key(self):
        t = render(KmsKeyArn=KMS, ReplicaBucketName="cairn-replica", ReplicaRegion="us-east-2",
                   ReplicaKmsKeyArn=REPLICA_KMS)
        s = t.statements("ReplicationRolePolicy")
        self.assertEqual(actions(s["EncryptReplicas"]),
                         {"kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"})
        self.assertEqual(resources(s["EncryptReplicas"]), [REPLICA_KMS])
        self.assertEqual(s["EncryptReplicas"]["Condition"]["StringEquals"],
                         {"kms:ViaService": "s3.us-east-2.amazonaws.com"})
        self.assertEqual(actions(s["DecryptSource"]), {"kms:Decrypt"})
        self.assertEqual(s["DecryptSource"]["Condition"]["StringEquals"],
                         {"kms:ViaService": "s3.eu-west-1.amazonaws.com"})
        bucket = t.props("ObjectBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        self.assertTrue(bucket[0]["BucketKeyEnabled"])

    def test_a_dead_primary_fails_over_within_seconds(self):
        t = render(ReplicaBucketName="cairn-replica", ReplicaRegion="us-east-2")
        origins = {o["Id"]: o for o in t.props("Distribution")["DistributionConfig"]["Origins"]}
        primary, replica = origins["primary"], origins["replica"]
        self.assertLessEqual(primary["ConnectionAttempts"] * primary["ConnectionTimeout"], 6)
        self.assertEqual((replica["ConnectionAttempts"], replica["ConnectionTimeout"]), (3, 5))
        (lone,) = render().props("Distribution")["DistributionConfig"]["Origins"]
        self.assertEqual((lone["ConnectionAttempts"], lone["ConnectionTimeout"]), (3, 5))

    def test_a_slot_filled_again_makes_a_key_cloudfront_has_not_seen(self):
        def key(t, logical):
            c = t.props(logical)["PublicKeyConfig"]
            return c["Name"], c["CallerReference"]

        # A slot's first key keeps the names keys had before generations (CloudFront cannot
        # rename a key, so a stack deployed before them updates without touching its keys).
        first = render()
        self.assertEqual(key(first, "PublicKey"), ("cairn-test-key-a", "cairn-test-key-a"))
        again = render(CloudFrontPublicKeyGeneration=2)
        self.assertEqual(key(again, "PublicKey"), ("cairn-test-key-a-2", "cairn-test-key-a-2"))
        b = render(CloudFrontPublicKeyPem="", CloudFrontPublicKeyPemNext=PEM,
                   CloudFrontPublicKeyNextGeneration=3)
        self.assertNotIn("PublicKey", b.resources)
        self.assertEqual(key(b, "PublicKeyNext"), ("cairn-test-key-b-3", "cairn-test-key-b-3"))
        self.assertEqual(b.props("KeyGroup")["KeyGroupConfig"]["Items"], ["<PublicKeyNext>"])
        for bad in ["0", "02", "two"]:
            with self.assertRaises(InvalidParameter, msg=bad):
                render(CloudFrontPublicKeyGeneration=bad)


if __name__ == "__main__":
    unittest.main()
