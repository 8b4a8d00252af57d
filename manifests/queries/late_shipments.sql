-- Late shipments: orders paid or shipped whose parcel was not delivered within two days
-- of the order, with the carrier and tracking number. Shipments and their orders are
-- co-located by region: each node joins its own.
SELECT o.region, o.order_id, o.order_date, s.carrier, s.tracking_number, s.status,
       coalesce(s.delivered_at, timestamptz '2026-12-31') - o.order_date AS waiting
FROM shipping s
JOIN orders o ON o.order_id = s.order_id AND o.region = s.region
WHERE o.status IN ('paid', 'shipped', 'delivered')
  AND coalesce(s.delivered_at, timestamptz '2026-12-31') > o.order_date + interval '2 days'
ORDER BY waiting DESC, o.order_id
LIMIT 50;
