# The cache the fan-out functions invalidate: an ElastiCache (Redis OSS) replication group in
# private subnets, TLS in transit and KMS encryption at rest, reachable only from the functions'
# security group.

locals {
  # rediss:// is TLS. redis-py sends the AUTH token as the password of the URL.
  redis_auth = var.redis_auth_token == null ? "" : ":${urlencode(var.redis_auth_token)}@"
  redis_url  = "rediss://${local.redis_auth}${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379/0"
}

resource "aws_security_group" "functions" {
  name        = "${var.name_prefix}order-events-functions"
  description = "The order platform's fan-out functions: Redis and HTTPS out, nothing in."
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "redis" {
  name        = "${var.name_prefix}order-cache"
  description = "ElastiCache of the order platform: Redis from the fan-out functions only."
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_functions" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis (TLS) from the fan-out functions"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.functions.id
}

resource "aws_vpc_security_group_egress_rule" "functions_to_redis" {
  security_group_id            = aws_security_group.functions.id
  description                  = "Redis (TLS) to ElastiCache"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.redis.id
}

resource "aws_vpc_security_group_egress_rule" "functions_to_aws_apis" {
  security_group_id = aws_security_group.functions.id
  description       = "HTTPS to the AWS APIs (through NAT or VPC endpoints)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_elasticache_subnet_group" "redis" {
  name       = "${var.name_prefix}order-cache"
  subnet_ids = var.subnet_ids
}

resource "aws_kms_key" "redis" {
  description             = "${var.name_prefix}order cache at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_elasticache_replication_group" "redis" {
  #checkov:skip=CKV_AWS_31:AUTH is optional here (var.redis_auth_token): TLS is always on and only the functions' security group reaches port 6379.
  replication_group_id       = "${var.name_prefix}order-cache"
  description                = "Order platform cache (cache-aside reads; invalidated by the fan-out functions)"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.redis.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.redis.arn
  transit_encryption_enabled = true
  auth_token                 = var.redis_auth_token
  snapshot_retention_limit   = 1
  auto_minor_version_upgrade = true
  apply_immediately          = true
}
