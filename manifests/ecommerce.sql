-- The e-commerce schema: the desired state dbtopo will converge each database to.
--
-- Plain PostgreSQL 17 DDL (CREATE TABLE and CREATE INDEX only), tables in foreign-key order.
-- Every constraint and index is named explicitly, so diffing against the live catalog compares
-- names that do not depend on PostgreSQL's naming rules. Money is numeric(12,2) and never
-- negative; timestamps are timestamptz defaulting to now(); statuses are text limited by CHECK.
-- orders.region ('EU' or 'US') is the key of the horizontal fragments: the tables that belong
-- to an order (its lines, payments and shipment) carry it too and include it in their keys,
-- so all of an order lives on its region's node and every key can be checked there.

CREATE TABLE users (
    user_id       bigint GENERATED ALWAYS AS IDENTITY,
    email         character varying(255) NOT NULL,
    name          text NOT NULL,
    password_hash text NOT NULL,
    region        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (user_id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_region_check CHECK (region IN ('EU', 'US'))
);

-- A category may sit under a parent category; removing the parent lifts its children to the top.
CREATE TABLE categories (
    category_id bigint GENERATED ALWAYS AS IDENTITY,
    name        text NOT NULL,
    parent_id   bigint,
    CONSTRAINT categories_pkey PRIMARY KEY (category_id),
    CONSTRAINT categories_name_key UNIQUE (name),
    CONSTRAINT categories_parent_id_fkey FOREIGN KEY (parent_id)
        REFERENCES categories (category_id) ON DELETE SET NULL,
    CONSTRAINT categories_parent_check CHECK (parent_id <> category_id)
);

CREATE TABLE products (
    product_id  bigint GENERATED ALWAYS AS IDENTITY,
    sku         text NOT NULL,
    name        text NOT NULL,
    description text,
    category_id bigint NOT NULL,
    price       numeric(12,2) NOT NULL CONSTRAINT products_price_check CHECK (price >= 0),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT products_pkey PRIMARY KEY (product_id),
    CONSTRAINT products_sku_key UNIQUE (sku),
    -- A category that still has products cannot be removed.
    CONSTRAINT products_category_id_fkey FOREIGN KEY (category_id)
        REFERENCES categories (category_id) ON DELETE RESTRICT
);

-- Orders keep their customer: a user with orders cannot be removed.
CREATE TABLE orders (
    order_id     bigint GENERATED ALWAYS AS IDENTITY,
    user_id      bigint NOT NULL,
    region       text NOT NULL,
    order_date   timestamptz NOT NULL DEFAULT now(),
    status       text NOT NULL DEFAULT 'pending',
    total_amount numeric(12,2) NOT NULL DEFAULT 0,
    CONSTRAINT orders_pkey PRIMARY KEY (order_id, region),
    CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (user_id) ON DELETE RESTRICT,
    CONSTRAINT orders_region_check CHECK (region IN ('EU', 'US')),
    CONSTRAINT orders_status_check
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    CONSTRAINT orders_total_amount_check CHECK (total_amount >= 0)
);

-- The lines of an order go with it; a product that was ever ordered stays.
CREATE TABLE order_details (
    order_detail_id bigint GENERATED ALWAYS AS IDENTITY,
    order_id        bigint NOT NULL,
    region          text NOT NULL,
    product_id      bigint NOT NULL,
    quantity        integer NOT NULL,
    unit_price      numeric(12,2) NOT NULL,
    CONSTRAINT order_details_pkey PRIMARY KEY (order_detail_id, region),
    CONSTRAINT order_details_order_id_fkey FOREIGN KEY (order_id, region)
        REFERENCES orders (order_id, region) ON DELETE CASCADE,
    CONSTRAINT order_details_product_id_fkey FOREIGN KEY (product_id)
        REFERENCES products (product_id) ON DELETE RESTRICT,
    CONSTRAINT order_details_order_id_product_id_key UNIQUE (order_id, region, product_id),
    CONSTRAINT order_details_region_check CHECK (region IN ('EU', 'US')),
    CONSTRAINT order_details_quantity_check CHECK (quantity > 0),
    CONSTRAINT order_details_unit_price_check CHECK (unit_price >= 0)
);

-- Payments of an order. They are financial records: an order with payments cannot be removed.
CREATE TABLE transactions (
    transaction_id bigint GENERATED ALWAYS AS IDENTITY,
    order_id       bigint NOT NULL,
    region         text NOT NULL,
    amount         numeric(12,2) NOT NULL,
    method         text NOT NULL,
    status         text NOT NULL DEFAULT 'pending',
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transactions_pkey PRIMARY KEY (transaction_id, region),
    CONSTRAINT transactions_order_id_fkey FOREIGN KEY (order_id, region)
        REFERENCES orders (order_id, region) ON DELETE RESTRICT,
    CONSTRAINT transactions_region_check CHECK (region IN ('EU', 'US')),
    CONSTRAINT transactions_amount_check CHECK (amount >= 0),
    CONSTRAINT transactions_method_check
        CHECK (method IN ('card', 'paypal', 'bank_transfer', 'gift_card')),
    CONSTRAINT transactions_status_check
        CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded'))
);

-- One review per user and product; reviews go with their author or product.
CREATE TABLE reviews (
    review_id  bigint GENERATED ALWAYS AS IDENTITY,
    user_id    bigint NOT NULL,
    product_id bigint NOT NULL,
    rating     smallint NOT NULL,
    comment    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reviews_pkey PRIMARY KEY (review_id),
    CONSTRAINT reviews_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (user_id) ON DELETE CASCADE,
    CONSTRAINT reviews_product_id_fkey FOREIGN KEY (product_id)
        REFERENCES products (product_id) ON DELETE CASCADE,
    CONSTRAINT reviews_user_id_product_id_key UNIQUE (user_id, product_id),
    CONSTRAINT reviews_rating_check CHECK (rating BETWEEN 1 AND 5)
);

-- Stock of a product at one location (a warehouse or store).
CREATE TABLE inventory (
    inventory_id bigint GENERATED ALWAYS AS IDENTITY,
    product_id   bigint NOT NULL,
    location     text NOT NULL,
    quantity     integer NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inventory_pkey PRIMARY KEY (inventory_id),
    CONSTRAINT inventory_product_id_fkey FOREIGN KEY (product_id)
        REFERENCES products (product_id) ON DELETE CASCADE,
    CONSTRAINT inventory_product_id_location_key UNIQUE (product_id, location),
    CONSTRAINT inventory_quantity_check CHECK (quantity >= 0)
);

-- The delivery of an order: one shipment per order.
CREATE TABLE shipping (
    shipping_id     bigint GENERATED ALWAYS AS IDENTITY,
    order_id        bigint NOT NULL,
    region          text NOT NULL,
    address         text NOT NULL,
    carrier         text,
    tracking_number text,
    status          text NOT NULL DEFAULT 'pending',
    shipped_at      timestamptz,
    delivered_at    timestamptz,
    CONSTRAINT shipping_pkey PRIMARY KEY (shipping_id, region),
    CONSTRAINT shipping_order_id_fkey FOREIGN KEY (order_id, region)
        REFERENCES orders (order_id, region) ON DELETE CASCADE,
    CONSTRAINT shipping_order_id_key UNIQUE (order_id, region),
    CONSTRAINT shipping_carrier_tracking_number_key UNIQUE (carrier, tracking_number, region),
    CONSTRAINT shipping_region_check CHECK (region IN ('EU', 'US')),
    CONSTRAINT shipping_status_check
        CHECK (status IN ('pending', 'shipped', 'in_transit', 'delivered', 'returned')),
    CONSTRAINT shipping_delivered_after_shipped_check CHECK (delivered_at >= shipped_at)
);

-- Indexes on foreign-key columns, so joins and ON DELETE checks do not scan the referencing
-- table. Columns that already lead a unique constraint's index (order_details.order_id,
-- reviews.user_id, inventory.product_id, shipping.order_id) or orders_user_id_order_date_idx
-- (orders.user_id) need no index of their own.
CREATE INDEX categories_parent_id_idx ON categories (parent_id);
CREATE INDEX products_category_id_idx ON products (category_id);
CREATE INDEX orders_user_id_order_date_idx ON orders (user_id, order_date);
CREATE INDEX order_details_product_id_idx ON order_details (product_id);
CREATE INDEX transactions_order_id_idx ON transactions (order_id);
CREATE INDEX reviews_product_id_idx ON reviews (product_id);
