import { describe, expect, it } from 'vitest';
import { refreshOrder, type ViewNode } from '../../activities/database/materialized-views';

const node = (oid: number, name: string, kind: 'm' | 'v', reads: number[] = [], populated = true): ViewNode => ({
  oid,
  schema: 'Sales',
  name,
  kind,
  populated,
  reads,
});

describe('refreshOrder', () => {
  it('puts each materialized view after those it reads, directly or through plain views, and skips unpopulated ones', () => {
    const nodes = [
      node(5, 'a_top', 'm', [4]), // reads a view over a materialized view over a materialized view
      node(4, 'b_view', 'v', [3]),
      node(3, 'c_middle', 'm', [2]),
      node(2, 'd_base', 'm'),
      node(6, 'e_never_refreshed', 'm', [2], false),
      node(7, 'f_alone', 'm'),
    ];
    expect(refreshOrder(nodes).map((m) => m.name)).toEqual(['d_base', 'c_middle', 'a_top', 'f_alone']);
  });

  it('returns nothing when there is nothing populated to refresh', () => {
    expect(refreshOrder([node(1, 'v', 'v'), node(2, 'm', 'm', [], false)])).toEqual([]);
  });
});
